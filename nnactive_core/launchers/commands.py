"""The ``commands`` launcher: one runnable shell line per experiment, for clusters we do not drive
ourselves (LSF ``bsub``, hand-written ``sbatch`` wrappers, GNU parallel).

Every line is self-contained: the environment the experiment needs comes first through ``env``,
and every word is quoted with :func:`shlex.quote`, so ``while read -r line; do bsub ... "$line"``
or ``parallel < commands.txt`` run it as is.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from nnactive_core.io import atomic_write_text
from nnactive_core.launchers.api import JobOutcome, Launcher, LaunchJob

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def parse_flag(launcher: str, option: str, value: object) -> bool:
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"launcher {launcher!r}: option {option}={value!r} is not true or false")


def command_line(job: LaunchJob, with_log: bool = False) -> str:
    """The shell line that runs ``job``: ``env K=V ... argv [>> log 2>&1]``."""
    words = list(job.argv)
    if job.env:
        words = ["env", *(f"{key}={value}" for key, value in sorted(job.env.items())), *words]
    line = shlex.join(words)
    if with_log:
        line += f" >> {shlex.quote(str(job.log_file))} 2>&1"
    return line


class CommandsLauncher(Launcher):
    name = "commands"
    description = "Write one quoted `nnactive run` command line per experiment to a file (for bsub/sbatch)."
    options = {
        "out": "file the command lines are written to ('-' for standard output); required",
        "log": "true: append '>> LOG 2>&1' so each line writes the experiment's log file (default false)",
    }

    def launch(self, jobs: Sequence[LaunchJob], **options) -> list[JobOutcome]:
        self.validate_options(options)
        out, with_log = self.settings(options)
        text = "".join(command_line(job, with_log) + "\n" for job in jobs)
        if with_log:
            for folder in sorted({job.log_file.parent for job in jobs}):
                folder.mkdir(parents=True, exist_ok=True)
        if out is None:
            sys.stdout.write(text)
            sys.stdout.flush()
            where = "standard output"
        else:
            atomic_write_text(out, text)
            where = str(out)
        return [JobOutcome(experiment=job.experiment, state="written", detail=where) for job in jobs]

    def settings(self, options: Mapping[str, object]) -> tuple[Path | None, bool]:
        if not str(options.get("out", "")).strip():
            raise ValueError(
                f"launcher {self.name!r} needs option out=FILE (the file for the command lines, '-' for "
                "standard output)"
            )
        out = str(options["out"]).strip()
        with_log = parse_flag(self.name, "log", options.get("log", "false"))
        return (None if out == "-" else Path(out)), with_log
