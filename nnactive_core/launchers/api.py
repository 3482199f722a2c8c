"""What a launcher is: something that runs ``nnactive run`` command lines, one per experiment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from nnactive_core.experiment.config import read_only_mapping


@attrs.frozen(kw_only=True)
class LaunchJob:
    """One experiment to run: its name, the command line and where its output goes."""

    experiment: str
    argv: tuple[str, ...] = attrs.field(converter=tuple)
    log_file: Path
    env: Mapping[str, str] = attrs.field(factory=dict, converter=read_only_mapping)


@attrs.frozen(kw_only=True)
class JobOutcome:
    experiment: str
    state: str
    """``done``, ``failed``, ``submitted`` (handed to a scheduler), ``written`` (command lists),
    ``stopped`` (interrupted, resumes) or ``not started``."""
    detail: str = ""


class LaunchInterrupted(KeyboardInterrupt):
    """SIGTERM or Ctrl-C stopped a launcher that runs the jobs itself, after it stopped them;
    ``outcomes`` says what became of each job, ``signal_number`` which signal it was."""

    def __init__(self, outcomes: Sequence[JobOutcome], signal_number: int) -> None:
        self.outcomes = list(outcomes)
        self.signal_number = signal_number
        super().__init__(f"interrupted by signal {signal_number}")


class Launcher:
    """Base class of launchers registered through ``nnactive_register_launchers``."""

    name: str = ""
    description: str = ""
    options: Mapping[str, str] = {}
    """Option name -> one-line help."""

    def launch(self, jobs: Sequence[LaunchJob], **options) -> list[JobOutcome]:
        raise NotImplementedError

    def active_jobs(self, experiments: Sequence[str], **options) -> Mapping[str, str]:
        """Of ``experiments``, those with a job this launcher submitted that the scheduler still holds
        (queued, pending a requeue, running), each with a one-line description. ``nnactive grid run``
        launches none of them again. Launchers that cannot tell return nothing."""
        return {}

    def validate_options(self, options: Mapping[str, object]) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(
                f"launcher {self.name!r} does not accept option(s) {', '.join(unknown)}; "
                f"accepted: {', '.join(sorted(self.options)) or 'none'}"
            )


def log_path(folder: Path, experiment: str) -> Path:
    return Path(folder) / f"{experiment}.log"
