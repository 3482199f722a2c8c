"""``nnactive setup``: check everything, create the experiment's folders, then run the setup step.

Nothing is written before the strategy, starting budget, dataset adapter, training profile, device
and base dataset are known to be usable, and the patches and queries to fit the pool
(:mod:`~nnactive_core.experiment.pool_fit`). The setup step itself (experiment ``dataset.json`` and
symlinks, the starting budget ``loop_000.json``, partial labels, costs, plans and splits) is restartable
like every other step: a killed setup finishes with the next ``nnactive setup`` or ``nnactive run``.
When the setup step of an experiment created by the same call fails, the experiment is removed again
(folders and id), so that the corrected command starts afresh.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from nnactive_core.datasets.raw_format import DATASET_JSON, FREE_FOLDER, SPLITS, load_dataset_json
from nnactive_core.experiment import nnunet_steps, records
from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.layout import (
    ExperimentLayout,
    Roots,
    experiment_folder_name,
    find_experiment,
    reserve_experiment_id,
)
from nnactive_core.experiment.lock import ExperimentLock
from nnactive_core.experiment.loop_checks import check_loop_files
from nnactive_core.experiment.oracle import write_partial_labels
from nnactive_core.experiment.pool_fit import PoolFitError, check_pool_fit
from nnactive_core.experiment.progress import Reporter
from nnactive_core.experiment.querying import resolve_strategy, starting_budget
from nnactive_core.experiment.removal import experiment_folders, remove_experiment
from nnactive_core.experiment.state import SETUP, State, load_state, save_state
from nnactive_core.experiment.versions import check_versions, used_distributions
from nnactive_core.io import atomic_write_json, remove_temp_files
from nnactive_core.patches.patch import loop_file_name, save_loop

if TYPE_CHECKING:
    from nnactive_core.datasets.api import Dataset
    from nnactive_core.plugins import Registry

LINKED_FOLDERS = (SPLITS["pool"][0], *SPLITS["validation"], FREE_FOLDER)
"""What the experiment's raw folder links from the base: pool images, validation set, cost-free layer."""


class SetupError(RuntimeError):
    """The experiment cannot be set up; the message says what to fix."""


def plugin_uses(config: ExperimentConfig) -> list[tuple[str, str]]:
    from nnactive_core.costs.accounting import registered_cost_metrics

    uses = [
        ("strategy", config.strategy),
        ("strategy", config.starting_budget),
        ("dataset adapter", config.dataset_adapter),
    ]
    return uses + [("cost metric", metric.name) for metric in registered_cost_metrics()]


def check_config(config: ExperimentConfig, registry: Registry) -> None:
    """Every named plugin and the training profile exist (raises before anything is written)."""
    resolve_strategy(registry, config.strategy)
    resolve_strategy(registry, config.starting_budget, "starting budget")
    registry.get("dataset adapter", config.dataset_adapter)
    from nnactive_core.nnunet.profiles import get_profile

    try:
        training = get_profile(config.training_profile, **config.training_overrides)
    except (ValueError, TypeError) as error:
        given = ", ".join(f"{key}={value!r}" for key, value in config.training_overrides.items())
        raise SetupError(
            f"experiment config field 'training_profile' ({config.training_profile!r}) / "
            f"'training_overrides' ({given or 'none'}): {error}"
        ) from None
    for field in ("val_mirroring", "query_mirroring"):
        if getattr(config, field) and not training.mirroring:
            raise SetupError(
                f"experiment config field {field!r}: the training profile {config.training_profile!r} trains "
                "without mirroring, so prediction cannot mirror; leave it out (it defaults to false with "
                "this profile) or set it to false"
            )


def check_budget(config: ExperimentConfig, dataset: Dataset, registry: Registry) -> None:
    """A budget metric exists and, where a model makes the queries, can estimate costs before
    annotation (:meth:`nnactive_core.costs.api.CostMetric.estimate`)."""
    if not config.budgeted:
        return
    import numpy as np

    from nnactive_core.experiment.querying import query_budget
    from nnactive_core.patches.patch import Patch
    from nnactive_core.query.budget import BudgetError
    from nnactive_core.strategies.api import ScoreStrategy

    try:
        budget = query_budget(config, dataset, 1.0)
        strategy, _ = resolve_strategy(registry, config.strategy)
        if isinstance(strategy, ScoreStrategy):
            channels = len(dataset.labels)
            probe = Patch(file="probe", start=(0, 0, 0), size=(1, 1, 1))
            budget.estimate(probe, np.full((channels, 1, 1, 1), 1.0 / channels, dtype=np.float32))
    except BudgetError as error:
        raise SetupError(str(error)) from None


def checked_device(config: ExperimentConfig) -> str:
    """The torch device the experiment runs on, checked to exist here."""
    try:
        return nnunet_steps.device_name(config)
    except ValueError as error:
        raise SetupError(f"experiment config field 'device': {error}") from None


def removal_hint(name: str) -> str:
    return f"to start it over, remove it with `nnactive remove --experiment {name}`"


def open_dataset(config: ExperimentConfig, roots: Roots, registry: Registry) -> Dataset:
    """The base dataset through its adapter. Generating adapters (the demo) build their dataset on first
    use; any other base dataset must exist under ``$nnActive_raw/nnUNet_raw``."""
    location = roots.base_raw(config.dataset)
    adapter = registry.get("dataset adapter", config.dataset_adapter)
    if not adapter.generates_dataset and not location.is_dir():
        raise SetupError(
            f"base dataset {config.dataset} not found: {location} does not exist (nnActive_raw is "
            f"{roots.raw}); put the nnU-Net raw dataset there, or prepare it with `nnactive data`"
        )
    try:
        dataset = adapter.open(location, **config.dataset_options)
    except TypeError as error:
        options = ", ".join(f"{key}={value!r}" for key, value in config.dataset_options.items())
        raise SetupError(
            f"experiment config field 'dataset_options' ({options or 'none'}): dataset adapter "
            f"{config.dataset_adapter!r}: {error}"
        ) from None
    except (ValueError, KeyError, OSError) as error:
        raise SetupError(f"base dataset {config.dataset} ({config.dataset_adapter}): {error}") from None
    if not dataset.validation_cases():
        raise SetupError(
            f"base dataset {config.dataset} has no held-out validation cases ({dataset.root}/imagesVal); "
            "create them with `nnactive data split`"
        )
    return dataset


def _differences(stored: ExperimentConfig, wanted: ExperimentConfig) -> list[str]:
    ours, theirs = stored.to_json(), wanted.to_json()
    return [f"{k}: {ours[k]!r} (stored) vs {theirs[k]!r}" for k in ours if ours[k] != theirs[k]]


def create_experiment(config: ExperimentConfig, roots: Roots, registry: Registry) -> ExperimentLayout:
    """The experiment's layout: the existing one with this name (same config required), or a new one
    with a freshly reserved id, its results folder, ``config.json``, ``paths.json``, ``versions.json``
    and a state at the setup step."""
    existing = find_experiment(roots, config.name())
    if existing is not None:
        stored = ExperimentConfig.load(existing.results)
        changed = _differences(stored, config)
        if changed:
            raise SetupError(
                f"experiment {config.name()} exists ({existing.results}) with another config: "
                f"{'; '.join(changed)}"
            )
        return existing
    experiment_id = reserve_experiment_id(roots, config.dataset)
    layout = ExperimentLayout(
        roots=roots, base=config.dataset, folder=experiment_folder_name(experiment_id, config.name())
    )
    layout.results.mkdir(parents=True)
    atomic_write_json(layout.paths_file, layout.paths_record())
    check_versions(layout.results, used_distributions(registry, plugin_uses(config)), allow_change=False)
    save_state(layout.results, State())
    # config.json last: an experiment folder without it is not listed, so a setup killed before this
    # line leaves only an unused folder behind
    config.save(layout.results)
    return layout


def _link(target: Path, link: Path) -> None:
    if link.is_symlink() or link.exists():
        if link.is_symlink() and Path(os.readlink(link)) == target:
            return
        link.unlink()
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, link)


def experiment_dataset_json(dataset: Dataset, layout: ExperimentLayout) -> dict:
    base = load_dataset_json(dataset.root)
    labels = {name: value for name, value in base["labels"].items() if name != "ignore"}
    labels["ignore"] = dataset.ignore_label
    return {
        **base,
        "name": layout.name,
        "labels": labels,
        "numTraining": len(dataset.pool_cases()),
        "nnactive": {"base_dataset": dataset.name, "experiment": layout.name},
    }


def write_raw_folder(dataset: Dataset, layout: ExperimentLayout) -> None:
    """The experiment's nnU-Net raw folder: ``dataset.json`` with ``ignore`` and symlinks to the base
    images, validation set and cost-free layer; ``labelsTr`` is filled by the oracle."""
    layout.labels.mkdir(parents=True, exist_ok=True)
    atomic_write_json(layout.raw / DATASET_JSON, experiment_dataset_json(dataset, layout))
    for folder in LINKED_FOLDERS:
        source = Path(dataset.root).absolute() / folder
        if source.is_dir():
            _link(source, layout.raw / folder)


def run_setup_step(
    layout: ExperimentLayout,
    config: ExperimentConfig,
    dataset: Dataset,
    registry: Registry,
    reporter: Reporter,
    device: str,
) -> None:
    """Everything loop 0 needs before preprocessing. Rewrites its outputs identically when repeated."""
    check_budget(config, dataset, registry)
    write_raw_folder(dataset, layout)
    amount = (
        f"{config.sbs} patches"
        if config.starting_query_budget is None
        else f"{config.starting_query_budget:g} {config.budget_metric}"
    )
    reporter.info(f"starting budget: {amount} by {config.starting_budget}")
    if (layout.raw / loop_file_name(0)).is_file():
        patches = check_loop_files(layout.raw, dataset, config)[0]
    else:
        patches = starting_budget(config, dataset, registry, device).patches
        save_loop(layout.raw, 0, patches)
    write_partial_labels(dataset, layout.labels, patches)
    records.record_annotated_classes(layout, dataset, patches, replace=True)
    records.write_costs(layout, dataset, [patches], config)
    nnunet_steps.prepare_plans(layout, config, dataset, reporter)
    nnunet_steps.write_splits(layout, config, loop=0)


def setup_experiment(
    config: ExperimentConfig,
    roots: Roots,
    *,
    registry: Registry | None = None,
    device: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> ExperimentLayout:
    """Set up (or finish setting up) the experiment of ``config``; returns its layout. ``echo`` shows
    the setup's messages (planning the base dataset) to the user; they go to ``log.txt`` either way."""
    from nnactive_core.plugins import registry as load_registry

    registry = registry or load_registry()
    check_config(config, registry)
    device = device or checked_device(config)
    dataset = open_dataset(config, roots, registry)
    new = find_experiment(roots, config.name()) is None
    warnings: list[str] = []
    if new:
        try:
            warnings = check_pool_fit(config, dataset, registry)
        except PoolFitError as error:
            raise SetupError(str(error)) from None
    layout = create_experiment(config, roots, registry)
    quiet = echo or (lambda line: None)
    failure = None
    with ExperimentLock(layout.results):
        state = load_state(layout.results)
        if state.step != SETUP:
            return layout
        remove_temp_files(experiment_folders(layout))
        with Reporter(layout.results, layout.folder, config.query_steps, display=False, echo=quiet) as active:
            for warning in warnings:
                active.say(f"warning: {warning}")
            try:
                run_setup_step(layout, config, dataset, registry, active, device)
            except Exception as error:
                failure = error
                message = f"setup of {layout.name}: {type(error).__name__}: {error}"
                active.error(f"{message}\n{traceback.format_exc()}")
                if not new:
                    save_state(layout.results, state.with_error(message))
                    raise SetupError(
                        f"{message}; details in {layout.log_file}; fix the cause and run the command "
                        f"again, or {removal_hint(layout.name)}"
                    ) from error
            else:
                save_state(layout.results, state.advance(config.query_steps))
        if failure is not None:
            # the experiment was created by this call: nothing of it stays, the id is free again
            remove_experiment(layout)
    if failure is not None:
        raise SetupError(
            f"setup of {layout.name}: {type(failure).__name__}: {failure}; nothing was kept (experiment "
            "removed again): fix the cause and run the command again"
        ) from failure
    return layout
