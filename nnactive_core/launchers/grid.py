"""Experiment grids: datasets x strategies x query sizes x seeds, every other config field shared.

A grid comes from a small TOML file, from repeated command-line options, or both (the command line
wins)::

    [grid]                      # the axes; each may instead be one value in [experiment]
    datasets = ["Dataset004_Hippocampus", "Dataset027_ACDC"]
    strategies = ["random", "pred_entropy"]
    query_sizes = [20, 40]
    seeds = [12345, 12346, 12347]

    [experiment]                # any ExperimentConfig field, shared by all experiments
    patch_size = [20, 20, 20]
    query_steps = 5             # the default, as for `nnactive run`

    [dataset.Dataset027_ACDC]   # per-dataset overrides of [experiment]
    patch_size = [4, 40, 40]

    [launcher]                  # optional default launcher and its options
    name = "submitit"
    partition = "gpu"

Expansion order is datasets, then strategies, query sizes and seeds (the last varies fastest).
Launching a grid creates the experiments that are to run (:func:`prepare_experiments`) and turns
each into an ``nnactive run --experiment NAME`` job (:func:`build_jobs`).
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from nnactive_core.experiment.config import RUN_DEFAULTS, ConfigError, ExperimentConfig, read_only_mapping
from nnactive_core.experiment.layout import ExperimentLayout, Roots
from nnactive_core.launchers.api import LaunchJob, log_path
from nnactive_core.values import parse_key_values

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

AXES = {"datasets": "dataset", "strategies": "strategy", "query_sizes": "query_size", "seeds": "seed"}
SECTIONS = ("grid", "experiment", "dataset", "launcher")
CONFIG_FIELDS = frozenset(field.name for field in attrs.fields(ExperimentConfig))


class GridError(ValueError):
    """An invalid grid; the message names the file (or the command line) and the field."""


def _read_only_per_dataset(value: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Mapping[str, Any]]:
    return read_only_mapping({name: read_only_mapping(fields) for name, fields in value.items()})


@attrs.frozen(kw_only=True)
class GridSpec:
    """A grid before expansion. ``axes`` maps config fields (dataset, strategy, query_size, seed) to
    their values; ``shared`` and ``per_dataset`` hold the other fields."""

    source: str
    axes: Mapping[str, tuple[Any, ...]] = attrs.field(factory=dict, converter=read_only_mapping)
    shared: Mapping[str, Any] = attrs.field(factory=dict, converter=read_only_mapping)
    per_dataset: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, converter=_read_only_per_dataset)
    dropped_sections: frozenset[str] = frozenset()
    """``per_dataset`` tables of a file whose datasets the command line replaced: they may name
    datasets that are no longer in the grid."""
    launcher: str | None = None
    launcher_options: Mapping[str, str] = attrs.field(factory=dict, converter=read_only_mapping)

    def merged_with(self, other: GridSpec) -> GridSpec:
        """``other`` (the command line) replaces this spec's axes and overrides its shared fields."""
        replaces_datasets = "dataset" in other.axes or "dataset" in other.shared
        return GridSpec(
            source=f"{self.source} + {other.source}" if not other.is_empty else self.source,
            axes={**self.axes, **other.axes},
            shared={**self.shared, **other.shared},
            per_dataset={**self.per_dataset, **other.per_dataset},
            dropped_sections=frozenset(self.per_dataset) if replaces_datasets else self.dropped_sections,
            launcher=other.launcher or self.launcher,
            launcher_options={**self.launcher_options, **other.launcher_options},
        )

    @property
    def is_empty(self) -> bool:
        return not (self.axes or self.shared or self.per_dataset)


def _check_fields(source: str, section: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(fields, Mapping):
        raise GridError(f"{source}: [{section}] must be a table of experiment config fields")
    unknown = sorted(set(fields) - CONFIG_FIELDS)
    if unknown:
        raise GridError(
            f"{source}: [{section}] has unknown experiment config field(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(CONFIG_FIELDS))}"
        )
    return dict(fields)


def _axis_values(source: str, key: str, values: Any) -> tuple[Any, ...]:
    if not isinstance(values, list) or not values:
        raise GridError(f"{source}: [grid] {key} must be a non-empty list, got {values!r}")
    if len(set(map(repr, values))) != len(values):
        raise GridError(f"{source}: [grid] {key} lists a value twice: {values!r}")
    return tuple(values)


def parse_grid_toml(text: str, source: str) -> GridSpec:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise GridError(f"{source}: not valid TOML: {error}") from None
    unknown = sorted(set(document) - set(SECTIONS))
    if unknown:
        raise GridError(f"{source}: unknown section(s) {', '.join(unknown)}; sections: {', '.join(SECTIONS)}")
    for section, value in document.items():
        if not isinstance(value, dict):
            raise GridError(f"{source}: {section} must be a table ([{section}]), got {value!r}")
    grid = document.get("grid", {})
    unknown = sorted(set(grid) - set(AXES))
    if unknown:
        raise GridError(f"{source}: [grid] has unknown key(s) {', '.join(unknown)}; axes: {', '.join(AXES)}")
    axes = {AXES[key]: _axis_values(source, key, values) for key, values in grid.items()}
    per_dataset = {
        dataset: _check_fields(source, f"dataset.{dataset}", fields)
        for dataset, fields in document.get("dataset", {}).items()
    }
    launcher = dict(document.get("launcher", {}))
    name = launcher.pop("name", None)
    return GridSpec(
        source=source,
        axes=axes,
        shared=_check_fields(source, "experiment", document.get("experiment", {})),
        per_dataset=per_dataset,
        launcher=str(name) if name is not None else None,
        launcher_options={key: _option_text(value) for key, value in launcher.items()},
    )


def _option_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def load_grid_file(path: Path) -> GridSpec:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise GridError(f"grid file {path}: {error.strerror or error}") from None
    return parse_grid_toml(text, str(path))


def spec_from_options(
    *,
    datasets: Sequence[str] = (),
    strategies: Sequence[str] = (),
    query_sizes: Sequence[int] = (),
    seeds: Sequence[int] = (),
    settings: Sequence[str] = (),
    launcher: str | None = None,
    launcher_options: Sequence[str] = (),
) -> GridSpec:
    source = "command line"
    axes = {}
    for field, values in (
        ("dataset", datasets),
        ("strategy", strategies),
        ("query_size", query_sizes),
        ("seed", seeds),
    ):
        if values:
            key = next(k for k, v in AXES.items() if v == field)
            axes[field] = _axis_values(source, key, list(values))
    try:
        shared = parse_key_values(settings, "--set")
        options = parse_key_values(launcher_options, "--option", typed=False)
    except ValueError as error:
        raise GridError(f"{source}: {error}") from None
    return GridSpec(
        source=source,
        axes=axes,
        shared=_check_fields(source, "--set", shared),
        launcher=launcher,
        launcher_options=options,
    )


def with_datasets(spec: GridSpec, resolve: Callable[[Any], str]) -> GridSpec:
    """The spec with every dataset it names (axis, shared field, per-dataset table) replaced by what
    ``resolve`` makes of it: ids and short names become ``DatasetNNN_<name>`` folder names."""
    axes = dict(spec.axes)
    if "dataset" in axes:
        axes["dataset"] = tuple(resolve(value) for value in axes["dataset"])
    shared = dict(spec.shared)
    if "dataset" in shared:
        shared["dataset"] = resolve(shared["dataset"])
    per_dataset, dropped = {}, set()
    for name, fields in spec.per_dataset.items():
        try:
            resolved = resolve(name)
        except Exception:  # the table of a dataset the command line dropped need not exist here
            if name not in spec.dropped_sections:
                raise
            continue
        per_dataset[resolved] = fields
        if name in spec.dropped_sections:
            dropped.add(resolved)
    return attrs.evolve(
        spec, axes=axes, shared=shared, per_dataset=per_dataset, dropped_sections=frozenset(dropped)
    )


def expand(spec: GridSpec) -> list[ExperimentConfig]:
    """Every experiment of the grid, validated, in expansion order."""
    axes: dict[str, tuple[Any, ...]] = {}
    for key, field in AXES.items():
        in_axes, in_shared = field in spec.axes, field in spec.shared
        if in_axes and in_shared:
            raise GridError(f"{spec.source}: {field} is given both as the axis {key} and as a shared field")
        if in_axes:
            axes[field] = tuple(spec.axes[field])
        elif in_shared:
            axes[field] = (spec.shared[field],)
        elif field != "seed":
            raise GridError(
                f"{spec.source}: no {key}: list them under [grid] {key} (or --{field.replace('_', '-')})"
            )
    # checked here rather than when reading the file: datasets may be named by id until resolved
    unused = sorted(set(spec.per_dataset) - set(axes["dataset"]) - spec.dropped_sections)
    if unused:
        raise GridError(f"{spec.source}: [dataset.{unused[0]}] names a dataset that is not in the grid")
    shared = {key: value for key, value in spec.shared.items() if key not in AXES.values()}
    configs: list[ExperimentConfig] = []
    seen: dict[str, str] = {}
    for values in itertools.product(*axes.values()):
        point = dict(zip(axes, values, strict=True))
        defaults = {"query_steps": RUN_DEFAULTS["query_steps"]}
        fields = {**defaults, **shared, **spec.per_dataset.get(point["dataset"], {}), **point}
        where = ", ".join(f"{key}={value}" for key, value in point.items())
        try:
            config = ExperimentConfig.from_json(fields, source=f"{spec.source} ({where})")
        except ConfigError as error:
            raise GridError(str(error)) from None
        name = config.name()
        if name in seen:
            raise GridError(f"{spec.source}: {where} and {seen[name]} are the same experiment {name}")
        seen[name] = where
        configs.append(config)
    return configs


def default_run_command() -> tuple[str, ...]:
    """``nnactive run`` of this installation: the console script beside the running interpreter, so
    jobs use the same environment even where it is not activated."""
    script = Path(sys.executable).parent / "nnactive"
    return (str(script) if script.is_file() else "nnactive", "run")


def _first_line(error: BaseException) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)


def check_experiments(configs: Sequence[ExperimentConfig], roots: Roots, registry) -> None:
    """Every plugin, training profile and base dataset the experiments name is usable; raises one
    error listing each distinct problem once, before anything is written."""
    from nnactive_core.experiment.setup import SetupError, check_config, open_dataset
    from nnactive_core.plugins import PluginError

    problems: dict[str, list[str]] = {}
    opened: dict[tuple, str | None] = {}
    for config in configs:
        try:
            check_config(config, registry)
        except (SetupError, PluginError, ValueError) as error:
            problems.setdefault(_first_line(error), []).append(config.name())
            continue
        key = (
            config.dataset,
            config.dataset_adapter,
            json.dumps(dict(config.dataset_options), sort_keys=True),
        )
        if key not in opened:
            try:
                open_dataset(config, roots, registry)
                opened[key] = None
            except (SetupError, ValueError, OSError) as error:
                opened[key] = _first_line(error)
        if opened[key] is not None:
            problems.setdefault(opened[key], []).append(config.name())
    if problems:
        failing = sum(len(names) for names in problems.values())
        listed = "; ".join(
            f"{problem} ({names[0]}{f' and {len(names) - 1} more' if len(names) > 1 else ''})"
            for problem, names in problems.items()
        )
        raise GridError(f"{failing} of {len(configs)} experiment(s) cannot be set up: {listed}")


def prepare_experiments(
    configs: Sequence[ExperimentConfig], roots: Roots, *, full_setup: bool = False
) -> tuple[list[ExperimentLayout], dict[str, str]]:
    """Create the experiments that are to run; returns their layouts and, by name, the setups that
    failed. Everything is checked first, so a grid with a bad entry creates nothing.

    Without ``full_setup`` only each experiment's folder, ``config.json`` and state are written here;
    the setup step (starting budget, nnU-Net planning) then runs as the first step of
    ``nnactive run`` inside the job, on the compute node. ``full_setup`` runs it here, one experiment
    after another."""
    from nnactive_core.experiment.setup import SetupError, create_experiment, setup_experiment
    from nnactive_core.plugins import registry as load_registry

    registry = load_registry()
    check_experiments(configs, roots, registry)
    layouts, failures = [], {}
    for config in configs:
        try:
            if full_setup:
                layouts.append(setup_experiment(config, roots, registry=registry))
            else:
                layouts.append(create_experiment(config, roots, registry))
        except (SetupError, RuntimeError, ValueError, OSError) as error:
            failures[config.name()] = f"setup: {_first_line(error)}"
    return layouts, failures


def build_jobs(
    layouts: Sequence[ExperimentLayout],
    roots: Roots,
    logs: Path,
    run_command: Sequence[str] | None = None,
    trackers: Sequence[str] = (),
) -> list[LaunchJob]:
    """One ``nnactive run --experiment NAME [--tracker T ...]`` job per experiment. The job carries
    the ``nnActive_*`` folders, so it finds the experiment wherever the launcher runs it."""
    command = tuple(run_command or default_run_command())
    tracking = tuple(argument for tracker in trackers for argument in ("--tracker", tracker))
    return [
        LaunchJob(
            experiment=layout.name,
            argv=(*command, "--experiment", layout.name, *tracking),
            log_file=log_path(Path(logs), layout.name),
            env=roots.env(),
        )
        for layout in layouts
    ]
