"""The ``wandb`` tracker: each experiment is one Weights & Biases run, grouped by its grid setting.

- **run**: id derived from the experiment's results folder, so a resumed ``nnactive run`` (another
  process, a requeued job) continues the same wandb run; name: the experiment folder's name;
  config: ``config.json`` plus the versions of nnactive and its plugins; tags: base dataset, strategy
  and seed.
- **group**: the grid setting, everything but strategy, seed and device (as ``nnactive analyze``
  groups experiments), so runs that are compared with each other sit together.
- **metrics**: per epoch ``train/loss`` (x axis ``train/epoch``, counted over every fold and loop);
  per fold ``fold/seconds/<fold>`` and ``fold/final_loss/<fold>``; per loop (x axis ``loop``)
  ``val/mean_dice``, ``val/dice/<label>``, ``val/warnings`` (how many the loop recorded: classes not
  learned or absent, Dice falling), ``budget/<cost>`` (cumulative), ``train/loop_seconds`` and, for a
  query, ``query/patches``, ``query/<cost>`` and the ``query/overview`` picture; the summary keeps the
  final values, ``final/*`` and the run's ``outcome``.

Settings come from wandb's own environment (``WANDB_MODE=offline``, ``WANDB_ENTITY``,
``WANDB_DIR``, ``WANDB_API_KEY``, ...) plus ``NNACTIVE_WANDB_PROJECT`` (default ``nnactive``).
Without ``WANDB_DIR`` the local files go to ``wandb/`` in the experiment's results folder.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from typing import Any

from nnactive_core.tracking import (
    FINISHED,
    PAUSED,
    EpochFinished,
    ExperimentFinished,
    ExperimentStarted,
    FoldTrained,
    LoopValidated,
    QueryMade,
    Tracker,
    TrackerRun,
)

PROJECT_ENV = "NNACTIVE_WANDB_PROJECT"
DEFAULT_PROJECT = "nnactive"
GROUP_LENGTH = 128
"""wandb's limit for a group name."""


def setting_group(config: Mapping[str, Any]) -> str:
    """``<base>__<readable setting>__<hash>``: one group per grid setting, the hash telling apart
    settings whose readable parts agree (see :mod:`nnactive_core.analysis.settings`)."""
    from nnactive_core.analysis.settings import readable_slug, setting_fields, setting_key, short_hash

    fields = setting_fields(config)
    tail = f"__{short_hash(setting_key(fields))}"
    head = f"{config['dataset']}__{readable_slug(fields)}"
    return head[: GROUP_LENGTH - len(tail)] + tail


def run_id(event: ExperimentStarted) -> str:
    """Stable for one experiment folder, so every run of it (a resume) continues one wandb run."""
    return hashlib.sha1(str(event.results).encode()).hexdigest()[:16]


class WandbTracker(Tracker):
    name = "wandb"
    description = "Weights & Biases: one run per experiment with config, per-loop metrics and query pictures."

    def start(self, event: ExperimentStarted) -> WandbRun:
        import wandb

        config = dict(event.config)
        run = wandb.init(
            project=os.environ.get(PROJECT_ENV) or DEFAULT_PROJECT,
            id=run_id(event),
            resume="allow",
            name=event.experiment,
            group=setting_group(config),
            job_type="active-learning",
            tags=[str(config["dataset"]), str(config["strategy"]), f"seed-{config['seed']}"],
            config={**config, "experiment": event.experiment, "versions": dict(event.versions)},
            dir=None if os.environ.get("WANDB_DIR") else str(event.results),
            reinit="finish_previous",
            settings=wandb.Settings(console="off", silent=True, save_code=False),
        )
        run.define_metric("train/epoch")
        run.define_metric("train/loss", step_metric="train/epoch")
        run.define_metric("loop")
        for pattern in ("val/*", "budget/*", "query/*", "train/loop_seconds", "fold/*"):
            run.define_metric(pattern, step_metric="loop")
        # a resumed wandb run knows how many epochs it logged: the training axis goes on from there
        return WandbRun(run, epochs_before=int(run.summary.get("train/epoch", 0) or 0))


def _numbers(prefix: str, values: Mapping[str, Any]) -> dict[str, float]:
    return {
        f"{prefix}/{key}": float(value) for key, value in values.items() if isinstance(value, int | float)
    }


class WandbRun(TrackerRun):
    """One experiment's wandb run; epochs are counted over folds and loops for one training axis."""

    def __init__(self, run, epochs_before: int = 0) -> None:
        self.run = run
        self.epochs = epochs_before

    def epoch_finished(self, event: EpochFinished) -> None:
        self.epochs += 1
        self.run.log({"train/epoch": self.epochs, "train/loss": event.train_loss})

    def fold_trained(self, event: FoldTrained) -> None:
        self.run.log(
            {
                "loop": event.loop,
                f"fold/seconds/{event.fold}": event.seconds,
                f"fold/final_loss/{event.fold}": event.final_loss,
            }
        )

    def loop_validated(self, event: LoopValidated) -> None:
        self.run.log(
            {
                "loop": event.loop,
                "val/mean_dice": event.mean_dice,
                **_numbers("val/dice", event.dice),
                **_numbers("budget", event.budget),
                "train/loop_seconds": event.training_seconds,
                "val/warnings": len(event.warnings),
            }
        )

    def query_made(self, event: QueryMade) -> None:
        import wandb

        metrics: dict[str, Any] = {
            "loop": event.loop,
            "query/patches": event.patches,
            **_numbers("query", event.costs),
        }
        if event.overview is not None:
            metrics["query/overview"] = wandb.Image(
                str(event.overview), caption=f"loop {event.loop}: {event.patches} patches by {event.strategy}"
            )
        self.run.log(metrics)

    def experiment_finished(self, event: ExperimentFinished) -> None:
        self.run.summary["final/loops"] = event.loops
        if not math.isnan(event.mean_dice):
            self.run.summary["final/mean_dice"] = event.mean_dice
        for key, value in _numbers("final/budget", event.budget).items():
            self.run.summary[key] = value

    def close(self, outcome: str) -> None:
        self.run.summary["outcome"] = outcome
        self.run.finish(exit_code=0 if outcome in (FINISHED, PAUSED) else 1)
