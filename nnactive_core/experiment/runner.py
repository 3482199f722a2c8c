"""``nnactive run``: the active-learning loop, one persisted step at a time.

Loop k: preprocess the cases whose labels changed -> train the folds -> validate on the held-out set
-> (not in the last loop) query with the strategy -> annotate through the oracle. ``state.json`` names
the next step and is saved after each step (and each trained fold); every output is written
atomically, so a run killed at any moment, even with SIGKILL, resumes where it stopped; a resumed run
first removes the temporary files a killed write left behind. SIGTERM and Ctrl-C stop a run between
two instructions without recording an error: the experiment counts as stopped and resumes.

``NNACTIVE_TEST_KILL_AT=<point>`` makes the process SIGKILL itself at a named point (see
:func:`nnactive_core.io.kill_point`); the resume tests use it to stop a run precisely mid-training,
mid-query or between writing a step's outputs and saving the state.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import attrs

from nnactive_core.experiment import loop_warnings, nnunet_steps, records, stopping
from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.human_oracle import ImportedOracle, import_instructions, imported_labels
from nnactive_core.experiment.layout import ExperimentLayout
from nnactive_core.experiment.oracle import changed_cases, write_partial_labels
from nnactive_core.experiment.progress import Reporter
from nnactive_core.experiment.querying import run_query, save_query
from nnactive_core.experiment.setup import run_setup_step
from nnactive_core.experiment.signals import describe
from nnactive_core.experiment.state import (
    ANNOTATE,
    PREPROCESS,
    QUERY,
    SETUP,
    TRAIN,
    VALIDATE,
    State,
    load_state,
    save_state,
)
from nnactive_core.experiment.trackers import TrackerHub
from nnactive_core.io import JsonFileError, kill_point, read_json
from nnactive_core.patches.patch import load_loop, loop_file_name, read_loop_files
from nnactive_core.tracking import (
    EpochFinished,
    ExperimentFinished,
    FoldTrained,
    LoopValidated,
    QueryMade,
)

if TYPE_CHECKING:
    from nnactive_core.datasets.api import Dataset
    from nnactive_core.plugins import Registry
    from nnactive_core.query.engine import CaseInput


class RunError(RuntimeError):
    """A step failed; the state records it and the run can be resumed after fixing the cause."""


class WaitingForAnnotators(Exception):
    """Human mode: the query is out and its labels are not imported yet. Not an error: the state
    stays at the annotate step and the next `nnactive run` continues from the imported labels."""


class Runner:
    """Runs the remaining steps of one experiment (the caller holds its lock)."""

    def __init__(
        self,
        layout: ExperimentLayout,
        config: ExperimentConfig,
        dataset: Dataset,
        registry: Registry,
        reporter: Reporter,
        device: str,
        hub: TrackerHub | None = None,
    ) -> None:
        self.layout = layout
        self.config = config
        self.dataset = dataset
        self.registry = registry
        self.reporter = reporter
        self.device = device
        self.hub = hub or TrackerHub(layout, [], registry, reporter.say)
        self.steps: dict[str, Callable[[State], State]] = {
            SETUP: self.setup,
            PREPROCESS: self.preprocess,
            TRAIN: self.train,
            VALIDATE: self.validate,
            QUERY: self.query,
            ANNOTATE: self.annotate,
        }

    def run(self, state: State) -> State:
        while not state.finished:
            self.reporter.loops_done(state.loop)
            self.reporter.step(state.loop, state.step)
            started = time.monotonic()
            try:
                kill_point(f"{state.step}:{state.loop}:start")
                after = self.steps[state.step](state)
                kill_point(f"{state.step}:{state.loop}:before-state")
            except WaitingForAnnotators as waiting:
                self.reporter.step_done()
                self.reporter.say(str(waiting))
                return state
            except KeyboardInterrupt as interrupt:
                self.reporter.info(
                    f"loop {state.loop} {state.step}: stopped by {describe(interrupt)}; `nnactive run` "
                    "resumes here"
                )
                raise
            except BaseException as error:
                message = f"loop {state.loop} {state.step}: {type(error).__name__}: {error}"
                self.reporter.error(f"{message}\n{traceback.format_exc()}")
                save_state(self.layout.results, load_state(self.layout.results).with_error(message))
                if isinstance(error, Exception):
                    raise RunError(message) from error
                raise
            seconds = time.monotonic() - started
            if state.step != SETUP:
                self.timings(state.loop).record(**{f"{state.step}_seconds": seconds})
            self.reporter.step_done()
            state = save_state(self.layout.results, after)
            if state.step == PREPROCESS and state.loop > 0:
                self.query_made(state.loop)
        self.reporter.loops_done(self.config.query_steps)
        if state.stopped:
            self.reporter.say(f"stopped after loop {state.loop}: {state.stopped}")
        self.hub.emit(self.finished_event(state))
        return state

    def timings(self, loop: int) -> records.LoopTimings:
        return records.LoopTimings.load(self.layout.timings_file(loop))

    def loops(self, up_to: int):
        return read_loop_files(self.layout.raw, up_to=up_to)

    def setup(self, state: State) -> State:
        run_setup_step(self.layout, self.config, self.dataset, self.registry, self.reporter, self.device)
        return state.advance(self.config.query_steps)

    def preprocess(self, state: State) -> State:
        """Only the cases whose labels this loop's new patches changed (all annotated ones in loop 0)."""
        new = load_loop(self.layout.raw / loop_file_name(state.loop))
        cases = changed_cases(self.dataset, new)
        self.reporter.info(f"preprocessing {len(cases)} case(s) whose labels changed: {', '.join(cases)}")
        nnunet_steps.preprocess(self.layout, self.dataset, cases)
        self.timings(state.loop).record(preprocessed_cases=len(cases), preprocessed=cases)
        return state.advance(self.config.query_steps)

    def train(self, state: State) -> State:
        if not state.folds_done:
            nnunet_steps.clear_models(self.layout)
        training_seconds = self.timings(state.loop).values.get("training_seconds_per_fold", {})
        for fold in self.config.trained_folds:
            if fold in state.folds_done:
                continue
            self.reporter.step(state.loop, f"train fold {fold}")
            started = time.monotonic()

            def on_epoch(
                epoch: int, epochs: int, loss: float, fold: int = fold, loop: int = state.loop
            ) -> None:
                self.reporter.advance(epoch + 1, epochs, "epochs")
                self.hub.emit(
                    EpochFinished(loop=loop, fold=fold, epoch=epoch, epochs=epochs, train_loss=loss)
                )
                kill_point(f"train:{loop}:{fold}:{epoch + 1}")

            loss = nnunet_steps.train_fold(self.layout, self.config, state.loop, fold, self.device, on_epoch)
            training_seconds[str(fold)] = time.monotonic() - started
            self.timings(state.loop).record(training_seconds_per_fold=training_seconds)
            self.reporter.info(f"loop {state.loop}: fold {fold} trained, final loss {loss:.4f}")
            self.hub.emit(
                FoldTrained(loop=state.loop, fold=fold, seconds=training_seconds[str(fold)], final_loss=loss)
            )
            state = save_state(self.layout.results, state.with_fold_done(fold))
        return state.advance(self.config.query_steps)

    def validate(self, state: State) -> State:
        """Validate, then record what the result warns about (``loop_XXX/warnings.json``) and show it
        under the loop's summary line."""
        summary = nnunet_steps.validate(
            self.layout,
            self.config,
            self.dataset,
            state.loop,
            self.device,
            self.reporter.advancer("validation cases"),
        )
        names = loop_warnings.label_names(self.dataset.labels)
        previous = self.layout.summary_file(state.loop - 1)
        warnings = loop_warnings.loop_warnings(
            state.loop, summary, names, read_json(previous, expect=dict) if previous.is_file() else None
        )
        loop_warnings.write_warnings(self.layout.warnings_file(state.loop), warnings)
        self.reporter.say(self.loop_line(state.loop, summary, names))
        for warning in warnings:
            self.reporter.say(f"warning: {warning.message}")
        self.hub.emit(
            LoopValidated(
                loop=state.loop,
                mean_dice=loop_warnings.mean_dice(summary, names).reported,
                dice=loop_warnings.class_dice(summary, names),
                budget=self.costs(state.loop).get("cumulative", {}),
                training_seconds=self.training_seconds(state.loop),
                summary_file=self.layout.summary_file(state.loop),
                warnings=tuple(warning.message for warning in warnings),
            )
        )
        return state.advance(self.config.query_steps)

    def costs(self, loop: int) -> dict:
        return records.reported_costs(self.layout, loop)

    def training_seconds(self, loop: int) -> float:
        return records.training_seconds(self.layout, loop)

    def loop_line(self, loop: int, summary: dict, names: dict[str, str]) -> str:
        """The one line per validated loop: budget spent so far, mean Dice and training time. Loops
        are numbered from 0, as their files (``loop_000`` is the starting budget)."""
        cumulative = self.costs(loop).get("cumulative", {})
        budget = ", ".join(
            f"{cumulative[k]:,.0f} {label}"
            for k, label in (("patches", "patches"), ("voxels", "voxels"), ("foreground_voxels", "fg voxels"))
            if k in cumulative
        )
        folds = len(self.config.trained_folds)
        return (
            f"loop {loop} done (loops 0-{self.config.query_steps - 1}): budget {budget or 'unknown'}; "
            f"mean Dice {loop_warnings.mean_dice(summary, names).text()}; training "
            f"{self.training_seconds(loop):.1f} s over {folds} fold{'s' if folds != 1 else ''}"
        )

    def pool(
        self, loop: int, requires_features: bool, watch: stopping.StopSetWatch | None = None
    ) -> Iterator[CaseInput]:
        """The pool's inputs, timing each case's prediction and offering a kill point per case; the
        stop cases' probabilities are shown to ``watch`` on their way to the strategy."""
        timings = self.timings(loop)
        spent = [0.0]
        inputs = nnunet_steps.pool_inputs(
            self.layout,
            self.config,
            self.dataset,
            self.device,
            self.reporter.advancer("pool cases"),
            requires_features,
        )
        for index, (case, name) in enumerate(zip(inputs, self.dataset.pool_cases(), strict=True)):

            def load(case: CaseInput = case, index: int = index, name: str = name):
                started = time.monotonic()
                probabilities = case.load_probabilities()
                spent[0] += time.monotonic() - started
                if watch is not None:
                    watch.see(name, probabilities)
                kill_point(f"query:{loop}:case:{index}")
                return probabilities

            yield attrs.evolve(case, load_probabilities=load)
        timings.record(pool_prediction_seconds=spent[0])

    def query(self, state: State) -> State:
        """Query with loop k's models; writes ``query.json`` and ``loop_{k+1}.json`` (last), unless
        the stopping signal measured on the way ends the experiment here (``--stop-when``)."""
        annotated = [patch for loop in self.loops(state.loop) for patch in loop]
        watch = stopping.StopSetWatch(self.stop_set())
        result = run_query(
            self.config,
            self.dataset,
            self.registry,
            loop=state.loop + 1,
            annotated=annotated,
            pool=lambda requires_features: self.pool(state.loop, requires_features, watch),
            device=self.device,
            carry=self.budget_carry(state.loop),
        )
        reason = self.stopping_signal(state.loop, watch)
        if reason is not None:
            return state.stop_early(reason)
        save_query(
            self.layout.raw,
            self.layout.query_file(state.loop),
            state.loop + 1,
            result,
            self.config.strategy,
        )
        return state.advance(self.config.query_steps)

    def budget_carry(self, loop: int) -> float:
        """What loop ``loop`` left of a budgeted experiment's budget (0 when unbudgeted)."""
        return records.budget_carry(self.layout, loop) if self.config.budgeted else 0.0

    def stop_set(self) -> list[str]:
        return stopping.stop_set(
            self.layout.stop_set_file, self.dataset.pool_cases(), self.config.seed, self.config.stop_set_size
        )

    def stopping_signal(self, loop: int, watch: stopping.StopSetWatch) -> str | None:
        """Record loop ``loop``'s signal (predicting the stop cases the query did not) and return why
        the experiment stops here, if it does. ``timings.json`` gets the seconds the stop cases'
        own prediction took (0 where the query predicted them all)."""
        started = time.monotonic()
        missing = watch.missing()
        if missing:
            inputs = nnunet_steps.pool_inputs(
                self.layout,
                self.config,
                self.dataset,
                self.device,
                self.reporter.advancer("stop-set cases"),
                cases=missing,
            )
            for name, case in zip(missing, inputs, strict=True):
                watch.see(name, case.load_probabilities())
        self.timings(loop).record(stop_set_prediction_seconds=time.monotonic() - started if missing else 0.0)
        record = stopping.record_loop(self.layout, self.config.stop_rule, loop, watch)
        self.reporter.say(stopping.signal_line(record))
        return record["stop"]

    def labeller(self, new_loop: int) -> Dataset:
        """Where labels inside patches come from: the ground truth, or in human mode the imported
        annotations of every loop (loop 0 from the ground truth unless people labelled it too)."""
        if self.config.annotator != "human":
            return self.dataset
        if imported_labels(self.layout, new_loop) is None:
            raise WaitingForAnnotators(import_instructions(self.layout, new_loop))
        oracle_loops = () if imported_labels(self.layout, 0) is not None else (0,)
        return ImportedOracle(self.dataset, self.layout, up_to=new_loop, oracle_loops=oracle_loops)

    def annotate(self, state: State) -> State:
        """The annotator labels the new patches: rewrite only the changed cases, then splits, costs
        and the archive of this loop's models."""
        loops = self.loops(state.loop + 1)
        everything = [patch for loop in loops for patch in loop]
        changed = changed_cases(self.dataset, loops[-1])
        labeller = self.labeller(state.loop + 1)
        write_partial_labels(labeller, self.layout.labels, everything, changed)
        kill_point(f"annotate:{state.loop}:labels-written")
        records.record_annotated_classes(self.layout, labeller, everything, cases=changed)
        records.write_costs(self.layout, self.dataset, loops, self.config)
        for warning in nnunet_steps.write_splits(self.layout, self.config, loop=state.loop + 1):
            self.reporter.info(f"splits: {warning}")
        nnunet_steps.archive_models(self.layout, state.loop)
        return state.advance(self.config.query_steps)

    def query_made(self, loop: int) -> None:
        """Tell the trackers about loop file ``loop`` once its patches are annotated and costed."""
        if not self.hub.active:
            return
        costs = self.costs(loop)
        self.hub.emit(
            QueryMade(
                loop=loop,
                strategy=self.config.strategy,
                patches=len(load_loop(self.layout.raw / loop_file_name(loop))),
                costs=costs.get("loop", {}),
                cumulative=costs.get("cumulative", {}),
                overview=self.hub.picture(loop),
            )
        )

    def finished_event(self, state: State) -> ExperimentFinished:
        last = state.loop
        try:
            summary = read_json(self.layout.summary_file(last), expect=dict)
        except JsonFileError:
            summary = {}
        names = loop_warnings.label_names(self.dataset.labels)
        return ExperimentFinished(
            loops=last + 1,
            mean_dice=loop_warnings.mean_dice(summary, names).reported,
            budget=self.costs(last).get("cumulative", {}),
        )
