"""SIGTERM handled like Ctrl-C: a run or a launcher stopped by ``kill``, a launcher or the scheduler
unwinds (locks released, children stopped, nothing recorded as failed) instead of dying on the spot."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: handled like Ctrl-C, as a stop rather than a failure."""


def signal_number(interrupt: KeyboardInterrupt) -> int:
    """The signal behind an interrupt: SIGTERM for :class:`Terminated`, SIGINT (Ctrl-C) otherwise."""
    return int(signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)


def describe(interrupt: KeyboardInterrupt) -> str:
    return "SIGTERM" if isinstance(interrupt, Terminated) else "Ctrl-C"


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Inside the block SIGTERM raises :class:`Terminated`. Signal handlers belong to the main thread:
    elsewhere the block changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
