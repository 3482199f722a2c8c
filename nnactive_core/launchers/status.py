"""Where every experiment of a grid stands, read from its own files (``config.json``,
``state.json``, ``lock.json``); nothing about a grid is stored apart from its experiments.

States:

- ``done``: the state reached its last step;
- ``running``: a live process holds the experiment's lock (on another host the holder cannot be
  checked and counts as running);
- ``failed``: the last run recorded an error (the first line is shown);
- ``stopped``: started, not finished, no error, nobody running it (killed, pre-empted, or waiting to
  be requeued);
- ``not started``: no experiment folder yet, or set up but never run;
- ``conflict``: an experiment of that name exists with another config (e.g. other ``query_steps``).
"""

from __future__ import annotations

import math
import socket
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence

import attrs

from nnactive_core.experiment.config import ConfigError, ExperimentConfig
from nnactive_core.experiment.layout import (
    ExperimentLayout,
    Roots,
    find_experiment,
    list_experiments,
    result_loops,
)
from nnactive_core.experiment.lock import lock_holder
from nnactive_core.experiment.loop_warnings import MeanDice, experiment_warnings, mean_dice
from nnactive_core.experiment.state import SETUP, StateError, load_state
from nnactive_core.io import JsonFileError, read_json

DONE = "done"
RUNNING = "running"
FAILED = "failed"
STOPPED = "stopped"
NOT_STARTED = "not started"
CONFLICT = "conflict"
STATES = (DONE, RUNNING, FAILED, STOPPED, NOT_STARTED, CONFLICT)
STYLES = {
    DONE: "green",
    RUNNING: "cyan",
    FAILED: "red",
    STOPPED: "yellow",
    NOT_STARTED: "dim",
    CONFLICT: "magenta",
}


@attrs.frozen(kw_only=True)
class ExperimentStatus:
    name: str
    state: str
    loop: int | None = None
    loops: int | None = None
    """``query_steps`` of the experiment: loops are numbered 0 .. loops - 1."""
    step: str | None = None
    detail: str = ""
    layout: ExperimentLayout | None = None
    config: ExperimentConfig | None = None

    @property
    def progress(self) -> str:
        """``"1 of 0-2"``: the loop it is at, numbered from 0 like the loop files, and the loops'
        range; never a fraction, which would read as a count."""
        if self.loop is None:
            return "-"
        return f"{self.loop} of 0-{self.loops - 1}" if self.loops else str(self.loop)

    @property
    def display_name(self) -> str:
        """The experiment folder's name once it exists (what the CLI prints and takes), else the
        experiment name it will get a ``DatasetNNN_`` prefix for."""
        return self.layout.folder if self.layout is not None else self.name


def first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def _config_differences(stored: ExperimentConfig, wanted: ExperimentConfig) -> list[str]:
    ours, theirs = stored.to_json(), wanted.to_json()
    return [key for key in ours if ours[key] != theirs[key]]


def experiment_status(
    layout: ExperimentLayout | None, wanted: ExperimentConfig | None = None, name: str | None = None
) -> ExperimentStatus:
    """The status of one experiment: ``layout`` is None for one that was never set up."""
    name = name or (wanted.name() if wanted is not None else layout.name if layout is not None else "?")
    if layout is None:
        return ExperimentStatus(
            name=name, state=NOT_STARTED, config=wanted, loops=wanted.query_steps if wanted else None
        )
    try:
        stored = ExperimentConfig.load(layout.results)
    except ConfigError as error:
        return ExperimentStatus(name=name, state=FAILED, detail=first_line(str(error)), layout=layout)
    if wanted is not None:
        changed = _config_differences(stored, wanted)
        if changed:
            return ExperimentStatus(
                name=name,
                state=CONFLICT,
                layout=layout,
                config=wanted,
                loops=stored.query_steps,
                detail=f"exists with another {', '.join(changed)} ({layout.results})",
            )
    common = {"name": name, "layout": layout, "config": stored, "loops": stored.query_steps}
    try:
        state = load_state(layout.results)
    except StateError as error:
        return ExperimentStatus(state=FAILED, detail=first_line(str(error)), **common)
    common.update(loop=state.loop, step=state.step)
    if state.finished:
        detail = f"stopped early by {stored.stop_when}" if state.stopped else ""
        return ExperimentStatus(state=DONE, detail=detail, **common)
    holder = lock_holder(layout.results)
    if holder is not None:
        where = f"pid {holder.pid} on {holder.host}"
        if holder.host != socket.gethostname():
            where += " (another host: not checked)"
        return ExperimentStatus(state=RUNNING, detail=where, **common)
    if state.last_error:
        return ExperimentStatus(state=FAILED, detail=first_line(state.last_error), **common)
    if state.step == SETUP or (state.loop == 0 and not layout.timings_file(0).exists()):
        return ExperimentStatus(state=NOT_STARTED, **common)
    return ExperimentStatus(state=STOPPED, **common)


def grid_status(roots: Roots, configs: Sequence[ExperimentConfig]) -> list[ExperimentStatus]:
    """Statuses of a grid's experiments, in grid order. Lists the results folder once, not once per
    experiment: a grid has hundreds."""
    existing: dict[str, list[ExperimentLayout]] = {}
    for layout in list_experiments(roots):
        existing.setdefault(layout.name, []).append(layout)
    statuses = []
    for config in configs:
        found = existing.get(config.name(), [])
        if len(found) > 1:
            # the layout module's own lookup raises the message that lists the candidates
            find_experiment(roots, config.name())
        statuses.append(experiment_status(found[0] if found else None, config))
    return statuses


def all_status(roots: Roots) -> list[ExperimentStatus]:
    """Every experiment under ``nnActive_results``, whatever grid it came from."""
    return [experiment_status(layout) for layout in list_experiments(roots)]


def select(statuses: Iterable[ExperimentStatus], states: Iterable[str]) -> list[ExperimentStatus]:
    wanted = set(states)
    return [status for status in statuses if status.state in wanted]


def summary(statuses: Sequence[ExperimentStatus]) -> str:
    """``"12 experiments: 8 done, 2 running, 1 failed, 1 not started"``."""
    counts = Counter(status.state for status in statuses)
    parts = [f"{counts[state]} {state}" for state in STATES if counts[state]]
    noun = "experiment" if len(statuses) == 1 else "experiments"
    return f"{len(statuses)} {noun}" + (f": {', '.join(parts)}" if parts else "")


def status_table(statuses: Sequence[ExperimentStatus], title: str | None = None):
    """A rich table: experiment, loop, step, state, detail."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_lines=False)
    table.add_column("experiment", overflow="fold")
    table.add_column("loop", justify="right")
    table.add_column("step")
    table.add_column("state")
    table.add_column("detail", overflow="fold")
    for status in statuses:
        table.add_row(
            Text(status.display_name),
            status.progress,
            status.step or "-",
            Text(status.state, style=STYLES.get(status.state, "")),
            Text(status.detail),
        )
    return table


@attrs.frozen(kw_only=True)
class LatestResults:
    """What the latest loops of an experiment measured."""

    budget: dict | None = None
    """Cumulative costs (``costs.json`` ``cumulative``) of the last loop that has them."""
    budget_loop: int | None = None
    mean_dice: MeanDice | None = None
    """Mean validation Dice of the last validated loop."""
    dice_loop: int | None = None


def latest_results(layout: ExperimentLayout) -> LatestResults:
    """Budget and mean Dice of the last loops that have them (unreadable files are passed over)."""
    found: dict = {}
    for loop in result_loops(layout.results):
        costs, summary = layout.costs_file(loop), layout.summary_file(loop)
        try:
            if costs.is_file():
                cumulative = read_json(costs)["cumulative"]
                found.update(budget=dict(cumulative), budget_loop=loop)
            if summary.is_file():
                found.update(mean_dice=mean_dice(read_json(summary, expect=dict), {}), dice_loop=loop)
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return LatestResults(**found)


WarningSource = Callable[[ExperimentLayout], Iterable[dict]]
UNREADABLE = "unreadable_warnings"


def loop_warning_records(layout: ExperimentLayout) -> list[dict]:
    """The warnings every validated loop recorded (``loop_XXX/warnings.json``: classes not learned or
    absent, Dice falling); a warnings file that cannot be read is a warning itself."""
    try:
        return [warning.to_json() for warning in experiment_warnings(layout)]
    except JsonFileError as error:
        return [{"kind": UNREADABLE, "loop": None, "classes": [], "message": str(error)}]


def tracker_warnings(layout: ExperimentLayout) -> Iterator[dict]:
    """A tracker that failed in the latest run (``tracking.json``)."""
    from nnactive_core.experiment.trackers import recorded

    for problem in recorded(layout)["problems"]:
        yield {
            "kind": "tracker",
            "loop": problem.get("loop"),
            "classes": [],
            "message": (
                f"tracker {problem.get('tracker')} failed at {problem.get('event')}: {problem.get('error')}"
            ),
        }


WARNING_SOURCES: list[WarningSource] = [loop_warning_records, tracker_warnings]
"""Where the warnings of ``nnactive status`` come from, each a function of the experiment's layout
yielding ``{"kind", "loop", "classes", "message"}`` records (see docs/cli.md, "Status as JSON")."""


def status_warnings(layout: ExperimentLayout | None) -> list[dict]:
    if layout is None:
        return []
    return [warning for source in WARNING_SOURCES for warning in source(layout)]


def _finite(value: float | None) -> float | None:
    """JSON has no NaN: a Dice nnU-Net could not measure is null."""
    return value if value is not None and math.isfinite(value) else None


def status_records(statuses: Sequence[ExperimentStatus]) -> list[dict]:
    """The statuses as JSON records (``nnactive status --json`` and ``nnactive grid status --json``;
    the schema is in docs/cli.md)."""
    records = []
    for status in statuses:
        latest = latest_results(status.layout) if status.layout is not None else LatestResults()
        dice = latest.mean_dice
        records.append(
            {
                "experiment": status.display_name,
                "name": status.name,
                "base_dataset": status.layout.base
                if status.layout is not None
                else (status.config.dataset if status.config is not None else None),
                "results": str(status.layout.results) if status.layout is not None else None,
                "state": status.state,
                "loop": status.loop,
                "loops": status.loops,
                "step": status.step,
                "budget": latest.budget,
                "budget_loop": latest.budget_loop,
                "mean_dice": None if dice is None else _finite(dice.reported),
                "undefined_dice": [] if dice is None else list(dice.undefined),
                "dice_loop": latest.dice_loop,
                "detail": status.detail,
                "stopping": stopping_record(status.layout),
                "warnings": status_warnings(status.layout),
            }
        )
    return records


def stopping_record(layout: ExperimentLayout | None) -> dict:
    """The stopping signal for ``status --json``: the latest loop's agreement and disagreement, every
    loop's, and why the experiment stopped early (null unless it did)."""
    from nnactive_core.experiment.stopping import experiment_signal

    signal = experiment_signal(layout) if layout is not None else []
    try:
        stopped = load_state(layout.results).stopped if layout is not None else None
    except StateError:
        stopped = None
    latest = signal[-1] if signal else {}
    return {
        "loop": latest.get("loop"),
        "agreement": latest.get("agreement"),
        "disagreement": latest.get("disagreement"),
        "held_loops": latest.get("held_loops"),
        "per_loop": [
            {key: record.get(key) for key in ("loop", "agreement", "disagreement")} for record in signal
        ],
        "stopped": stopped,
    }


def agreement_cell(layout: ExperimentLayout | None) -> str:
    """The latest stop-set agreement for the table, with the loop it was measured at."""
    from nnactive_core.experiment.stopping import experiment_signal

    signal = experiment_signal(layout) if layout is not None else []
    measured = [record for record in signal if record.get("agreement") is not None]
    if not measured:
        return "-"
    return f"{measured[-1]['agreement']:.3f} (loop {measured[-1]['loop']})"


def dice_cell(dice: MeanDice | None) -> str:
    """The mean Dice for a table: nnU-Net's, or the mean over the classes with a defined Dice and how
    many they are (the warnings name the others)."""
    if dice is None:
        return "-"
    if not math.isfinite(dice.reported):
        return "undefined"
    if math.isfinite(dice.value):
        return f"{dice.value:.4f}"
    return f"{dice.reported:.4f} ({dice.classes - len(dice.undefined)}/{dice.classes} classes)"


def progress_table(statuses: Sequence[ExperimentStatus]):
    """A rich table of experiments: loop, step, budget spent, last mean Dice, warnings recorded, the
    latest stop-set agreement (``stable``), state and detail (the last error of a failed run, the
    holder of a running one)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(show_lines=False)
    for column, justify in (
        ("experiment", "left"),
        ("loop", "right"),
        ("step", "left"),
        ("budget (patches)", "right"),
        ("mean Dice", "right"),
        ("warnings", "right"),
        ("stable", "right"),
        ("state", "left"),
        ("detail", "left"),
    ):
        table.add_column(column, justify=justify, overflow="fold")
    for status in statuses:
        latest = latest_results(status.layout) if status.layout is not None else LatestResults()
        patches = (latest.budget or {}).get("patches")
        warnings = status_warnings(status.layout)
        table.add_row(
            Text(status.display_name),
            status.progress,
            status.step or "-",
            "-" if patches is None else f"{patches:,.0f}",
            dice_cell(latest.mean_dice),
            Text(str(len(warnings)), style="yellow" if warnings else ""),
            agreement_cell(status.layout),
            Text(status.state, style=STYLES.get(status.state, "")),
            Text(status.detail),
        )
    return table


def warning_lines(statuses: Sequence[ExperimentStatus]) -> list[str]:
    """``warning: <experiment>: <message>`` for every warning of every experiment (loop warnings, a
    warnings file that cannot be read, a tracker that failed)."""
    return [
        f"warning: {status.display_name}: {warning['message']}"
        for status in statuses
        for warning in status_warnings(status.layout)
    ]
