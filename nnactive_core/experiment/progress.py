"""What a running experiment shows and logs: a rich progress display (loops, the current step, its
epochs or cases) on the terminal, a one-line summary per finished loop, and everything in the
experiment's ``log.txt``."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from nnactive_core.experiment.layout import LOG_FILE

LOGGER_NAME = "nnactive.experiment"

Advance = Callable[[int, int], None]
"""``advance(done, total)``: a step's fine-grained progress (epochs trained, cases predicted)."""


def experiment_logger(results: Path) -> tuple[logging.Logger, logging.Handler]:
    """The experiment's logger, appending to ``log.txt``. A log grows line by line and is the one file
    that is appended to rather than replaced, so a killed run keeps the lines before its death."""
    logger = logging.getLogger(f"{LOGGER_NAME}.{Path(results).name}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = logging.FileHandler(Path(results) / LOG_FILE, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger.addHandler(handler)
    return logger, handler


class Reporter:
    """Progress of one ``run``. ``display`` turns the rich display on (default: when stderr is a
    terminal); the log file and the loop summaries are written either way."""

    def __init__(
        self,
        results: Path,
        experiment: str,
        loops: int,
        display: bool | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.experiment = experiment
        self.loops = loops
        self.logger, self._handler = experiment_logger(results)
        self._echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
        self._display = sys.stderr.isatty() if display is None else display
        self._progress = None
        self._loop_task = None
        self._step_task = None
        self._step_started = 0.0
        self._step_name = ""

    def __enter__(self) -> Reporter:
        if self._display:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
            # a count of finished loops (0 .. loops); the loops themselves are numbered from 0
            self._loop_task = self._progress.add_task(f"{self.experiment}: loops done", total=self.loops)
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        self.logger.removeHandler(self._handler)
        self._handler.close()

    def info(self, message: str) -> None:
        self.logger.info(message)

    def say(self, line: str) -> None:
        """A line for the user (above the display) and the log."""
        self.logger.info(line)
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False)
        else:
            self._echo(line)

    def error(self, message: str) -> None:
        self.logger.error(message)

    def loops_done(self, done: int) -> None:
        if self._progress is not None:
            self._progress.update(self._loop_task, completed=done)

    def step(self, loop: int, step: str, total: int | None = None) -> None:
        """A step of ``loop`` starts; ``total`` units of fine-grained progress follow (or none)."""
        self._step_name = f"loop {loop}: {step}"
        self._step_started = time.monotonic()
        self.logger.info("%s started", self._step_name)
        if self._progress is not None:
            if self._step_task is not None:
                self._progress.remove_task(self._step_task)
            self._step_task = self._progress.add_task(self._step_name, total=total)

    def advance(self, done: int, total: int, what: str = "") -> None:
        if what:
            self.logger.info("%s: %s %d/%d", self._step_name, what, done, total)
        if self._progress is not None and self._step_task is not None:
            description = f"{self._step_name} {what}".rstrip()
            self._progress.update(self._step_task, completed=done, total=total, description=description)

    def advancer(self, what: str) -> Advance:
        return lambda done, total: self.advance(done, total, what)

    def step_done(self) -> float:
        seconds = time.monotonic() - self._step_started
        self.logger.info("%s finished in %.1f s", self._step_name, seconds)
        if self._progress is not None and self._step_task is not None:
            self._progress.remove_task(self._step_task)
            self._step_task = None
        return seconds
