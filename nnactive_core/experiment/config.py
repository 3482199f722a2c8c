"""``ExperimentConfig``: everything that defines one active-learning experiment, its validation and its
``config.json`` form (its name: :mod:`nnactive_core.experiment.naming`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from nnactive_core.experiment.layout import CONFIG_FILE
from nnactive_core.experiment.naming import DATASET_PATTERN, ENSEMBLES, format_name
from nnactive_core.io import JsonFileError, UnsafePathError, atomic_write_json, plain_name, read_json
from nnactive_core.nnunet.fingerprint import ANNOTATED, FOREGROUND_MODES
from nnactive_core.values import parse_triple

PROBABILITY_DTYPES = ("float16", "float32")
ANNOTATORS = ("oracle", "human")
RUN_DEFAULTS = {"query_size": 20, "query_steps": 5}
"""What ``nnactive run`` and grid files use where they do not name these fields."""
STANDARD_STARTING_BUDGET = "random-label2-all-classes"
"""The established starting budget: 2 patches per label, then random-label2 (plugin nnactive-random-fg)."""
CORE_STARTING_BUDGET = "random"
"""The starting budget of a core without the random-fg plugin: the core's uniform ``random``."""
DEFAULT_BUDGET_METRIC = "patches"
"""The established budget: every loop buys ``query_size`` patches."""


class ConfigError(ValueError):
    """An invalid configuration value; the message names the field."""


def _fail(field: str, message: str) -> None:
    raise ConfigError(f"experiment config field {field!r}: {message}")


def _triple(field: str):
    def convert(value) -> tuple[int, int, int]:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = [value]
        try:
            text = value if isinstance(value, str) else " ".join(str(int(v)) for v in value)
            return parse_triple(text, field)
        except (TypeError, ValueError):
            _fail(field, f"expected 3 integers (z, y, x) or one for every axis, got {value!r}")

    return convert


def _positive(instance, attribute, value) -> None:
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            _fail(attribute.name, f"must be a positive integer, got {value!r}")


def _optional_positive(instance, attribute, value) -> None:
    if value is not None:
        _positive(instance, attribute, value)


def _optional_budget(instance, attribute, value) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
        _fail(attribute.name, f"must be a positive number in the budget metric's unit, got {value!r}")


def _fraction(instance, attribute, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        _fail(attribute.name, f"must be a number in [0, 1], got {value!r}")


def _step(instance, attribute, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        _fail(attribute.name, f"must be a number in (0, 1], got {value!r}")


def _stop_rule(field: str, value) -> None:
    from nnactive_core.experiment.stopping import StopSpecError, parse_stop_when

    if value is None:
        return
    try:
        parse_stop_when(value)
    except StopSpecError as error:
        _fail(field, str(error))


def _plugin_name(instance, attribute, value) -> None:
    if not isinstance(value, str) or not re.match(r"^[a-z0-9][a-z0-9_\-]*$", value):
        _fail(attribute.name, f"must be a plugin name (lower case, digits, '-', '_'), got {value!r}")


def _is_plain_name(value) -> bool:
    try:
        plain_name(value, source="")
    except UnsafePathError:
        return False
    return True


def _dataset(instance, attribute, value) -> None:
    if not _is_plain_name(value) or not DATASET_PATTERN.match(value):
        _fail(attribute.name, f"must be a dataset folder name like 'Dataset004_Hippocampus', got {value!r}")


def _int(instance, attribute, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(attribute.name, f"must be an integer, got {value!r}")


def _bool(instance, attribute, value) -> None:
    if not isinstance(value, bool):
        _fail(attribute.name, f"must be true or false, got {value!r}")


def _mapping(instance, attribute, value) -> None:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        _fail(attribute.name, f"must be a mapping of option names to values, got {value!r}")
    try:
        json.dumps(dict(value))
    except TypeError as error:
        _fail(attribute.name, f"values must be JSON values: {error}")


def read_only_mapping(value):
    """A read-only copy of a mapping, so a frozen config cannot change under its name; anything else
    is left for the validator to reject."""
    return MappingProxyType(dict(value)) if isinstance(value, Mapping) else value


@attrs.frozen(kw_only=True)
class ExperimentConfig:
    """One experiment. ``query_steps`` is the number of loops (= trainings); there are
    ``query_steps - 1`` queries after the starting budget (loop 0)."""

    dataset: str = attrs.field(validator=_dataset)
    patch_size: tuple[int, int, int] = attrs.field(converter=_triple("patch_size"), validator=_positive)
    query_size: int = attrs.field(validator=_positive)
    query_steps: int = attrs.field(validator=_positive)
    strategy: str = attrs.field(validator=_plugin_name)
    seed: int = attrs.field(default=12345, validator=_int)
    dataset_adapter: str = attrs.field(default="nnunet-raw", validator=_plugin_name)
    dataset_options: Mapping[str, Any] = attrs.field(
        factory=dict, converter=read_only_mapping, validator=_mapping
    )
    starting_budget: str = attrs.field(factory=lambda: default_starting_budget(), validator=_plugin_name)
    starting_budget_size: int | None = attrs.field(default=None, validator=_optional_positive)
    agg_stride: tuple[int, int, int] = attrs.field(
        default=(1, 1, 1), converter=_triple("agg_stride"), validator=_positive
    )
    patches_per_case: int | None = attrs.field(default=None, validator=_optional_positive)
    patch_overlap: float = attrs.field(default=0.0, validator=_fraction)
    clip_patch_to_case: bool = attrs.field(default=False, validator=_bool)
    """Allow a patch larger than a case along an axis: it then covers the whole case along that axis.
    Without it such a patch size is refused at setup."""
    free_overlap: float = attrs.field(default=0.4, validator=_fraction)
    folds: int = attrs.field(default=5, validator=_positive)
    train_folds: int | None = attrs.field(default=None, validator=_optional_positive)
    training_profile: str = attrs.field(default="default", validator=_plugin_name)
    training_overrides: Mapping[str, Any] = attrs.field(
        factory=dict, converter=read_only_mapping, validator=_mapping
    )
    query_tile_step: float = attrs.field(default=0.75, validator=_step)
    query_mirroring: bool = attrs.field(
        default=attrs.Factory(lambda self: profile_mirroring(self, "query_mirroring"), takes_self=True),
        validator=_bool,
    )
    val_tile_step: float = attrs.field(default=0.5, validator=_step)
    val_mirroring: bool = attrs.field(
        default=attrs.Factory(lambda self: profile_mirroring(self, "val_mirroring"), takes_self=True),
        validator=_bool,
    )
    """Test-time mirroring of the held-out validation (``val_``) and pool (``query_``) predictions;
    by default what the training profile implies (none where its models train without mirroring)."""
    probability_dtype: str = attrs.field(default="float16")
    device: str | None = attrs.field(default=None)
    annotator: str = attrs.field(default="oracle")
    """``oracle`` copies ground truth into queried patches (simulation); ``human`` waits after each
    query until `nnactive annotate import` brings people's labels (loop 0 stays oracle-labelled
    unless an import for it exists)."""
    intensity_foreground: str = attrs.field(default=ANNOTATED)
    """Which voxels of the starting budget's labels the experiment's foreground intensity statistics
    (CT normalisation) come from: ``annotated`` foreground (default), or ``not-background``, which
    also counts un-annotated (``ignore``) voxels, as the published nnActive code does (see
    :mod:`nnactive_core.nnunet.fingerprint`)."""
    budget_metric: str = attrs.field(default=DEFAULT_BUDGET_METRIC)
    """The cost column each query's budget is spent in (``patches``, ``foreground_voxels``,
    ``annotation_seconds``, ...; see :mod:`nnactive_core.query.budget`)."""
    query_budget: float | None = attrs.field(default=None, validator=_optional_budget)
    """How much of ``budget_metric`` each query spends; None: ``query_size`` patches (the default
    metric only). A budget metric other than ``patches`` needs it."""
    starting_query_budget: float | None = attrs.field(default=None, validator=_optional_budget)
    """How much of ``budget_metric`` the starting budget (loop 0) spends; None: ``starting_budget_size``
    patches, as without a budget metric."""
    warm_start: bool = attrs.field(default=False, validator=_bool)
    """Loops after the first start each fold from the same fold's final weights of the loop before and
    train the profile's ``warm_epochs`` (docs/warm-start.md); off: every loop trains from scratch."""
    ensemble: str = attrs.field(default="folds")
    """The models that validate and score the pool: ``folds`` (one per trained fold) or ``snapshots``
    (the profile's ``snapshots`` checkpoints of each trained fold; ``train_folds`` defaults to 1)."""
    stop_when: str | None = attrs.field(default=None, validator=lambda i, a, v: _stop_rule(a.name, v))
    """``stable[:threshold[,loops]]`` ends the experiment once its predictions on the stop set stopped
    changing (:mod:`nnactive_core.experiment.stopping`); None runs every loop. It changes no loop that
    runs, so it is not part of the experiment name."""
    stop_set_size: int = attrs.field(default=5, validator=_positive)
    """Pool cases the stopping signal is measured on (drawn once from the seed)."""

    def __attrs_post_init__(self) -> None:
        if self.probability_dtype not in PROBABILITY_DTYPES:
            _fail(
                "probability_dtype",
                f"must be one of {', '.join(PROBABILITY_DTYPES)}, got {self.probability_dtype!r}",
            )
        if self.folds < 2:
            _fail("folds", f"cross-validation needs at least 2 folds, got {self.folds}")
        if self.train_folds is not None and self.train_folds > self.folds:
            _fail("train_folds", f"must be at most folds ({self.folds}), got {self.train_folds}")
        if self.annotator not in ANNOTATORS:
            _fail("annotator", f"must be one of {', '.join(ANNOTATORS)}, got {self.annotator!r}")
        if self.intensity_foreground not in FOREGROUND_MODES:
            _fail(
                "intensity_foreground",
                f"must be one of {', '.join(FOREGROUND_MODES)}, got {self.intensity_foreground!r}",
            )
        if self.ensemble not in ENSEMBLES:
            _fail("ensemble", f"must be one of {', '.join(ENSEMBLES)}, got {self.ensemble!r}")
        if self.warm_start or self.ensemble != "folds":
            from nnactive_core.nnunet.schedules import training_schedule

            try:
                training_schedule(_profile(self), warm=self.warm_start, snapshots=self.snapshots)
            except ValueError as error:
                _fail("training_overrides", str(error))
        if self.device is not None and (not isinstance(self.device, str) or not self.device):
            _fail("device", f"must be a torch device string such as 'cpu' or 'cuda:0', got {self.device!r}")
        self._check_budget()

    def _check_budget(self) -> None:
        if not isinstance(self.budget_metric, str) or not re.fullmatch(
            r"[a-z0-9][a-z0-9_\-]*", self.budget_metric
        ):
            _fail(
                "budget_metric", f"must be a cost column name such as 'patches', got {self.budget_metric!r}"
            )
        if self.budget_metric != DEFAULT_BUDGET_METRIC and self.query_budget is None:
            _fail("query_budget", f"budget_metric {self.budget_metric!r} needs the amount each query spends")
        if self.budget_metric == DEFAULT_BUDGET_METRIC:
            for field in ("query_budget", "starting_query_budget"):
                value = getattr(self, field)
                if value is not None and (value != int(value) or value < 1):
                    _fail(field, f"a budget in patches must be a whole number of patches, got {value!r}")

    @property
    def budgeted(self) -> bool:
        """Whether queries fill a budget (:mod:`nnactive_core.query.budget`) rather than take
        ``query_size`` patches; only then do names, query and costs files record a budget."""
        return (
            self.budget_metric != DEFAULT_BUDGET_METRIC
            or self.query_budget is not None
            or self.starting_query_budget is not None
        )

    @property
    def base_short_name(self) -> str:
        """The base dataset without its ``DatasetXXX_`` prefix."""
        return DATASET_PATTERN.match(self.dataset).group(2)  # type: ignore[union-attr]

    @property
    def sbs(self) -> int:
        return self.starting_budget_size if self.starting_budget_size is not None else self.query_size

    @property
    def per_case(self) -> int:
        return self.patches_per_case if self.patches_per_case is not None else self.query_size

    @property
    def trained_folds(self) -> tuple[int, ...]:
        default = 1 if self.ensemble == "snapshots" else self.folds
        return tuple(range(self.train_folds if self.train_folds is not None else default))

    @property
    def snapshots(self) -> int:
        """Ensemble members per trained fold (1 unless ``ensemble`` is ``snapshots``)."""
        return _profile(self).snapshots if self.ensemble == "snapshots" else 1

    @property
    def warm_epochs(self) -> int | None:
        """Epochs of a warm-started fold (None without ``warm_start``)."""
        return _profile(self).warm_training_epochs if self.warm_start else None

    @property
    def stop_rule(self):
        """The :class:`~nnactive_core.experiment.stopping.StopRule` of ``stop_when``, or None."""
        from nnactive_core.experiment.stopping import parse_stop_when

        return None if self.stop_when is None else parse_stop_when(self.stop_when)

    @property
    def queries(self) -> int:
        return self.query_steps - 1

    def name(self) -> str:
        return format_name(self)

    def to_json(self) -> dict[str, Any]:
        payload = attrs.asdict(self, recurse=False)
        for key, value in payload.items():
            if isinstance(value, tuple):
                payload[key] = list(value)
            elif isinstance(value, Mapping):
                payload[key] = dict(value)
        return payload

    @classmethod
    def from_json(cls, payload: Mapping[str, Any], source: str = "config") -> ExperimentConfig:
        known = {field.name for field in attrs.fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown experiment config field(s) {', '.join(unknown)}")
        required = [field.name for field in attrs.fields(cls) if field.default is attrs.NOTHING]
        missing = [name for name in required if name not in payload]
        if missing:
            raise ConfigError(f"{source}: missing experiment config field(s) {', '.join(missing)}")
        try:
            return cls(**payload)
        except TypeError as error:
            raise ConfigError(f"{source}: {error}") from None
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None

    def save(self, folder: Path) -> Path:
        path = Path(folder) / CONFIG_FILE
        atomic_write_json(path, self.to_json())
        return path

    @classmethod
    def load(cls, folder: Path) -> ExperimentConfig:
        path = Path(folder) / CONFIG_FILE
        try:
            payload = read_json(path, expect=dict, missing="no experiment config here")
        except JsonFileError as error:
            raise ConfigError(str(error)) from None
        return cls.from_json(payload, source=str(path))


def default_starting_budget() -> str:
    """The established class-covering start where its plugin is installed, else the core's own
    ``random``, so that a core without plugins works with its defaults. Either way the name is stored
    in ``config.json`` and in the experiment name: installing or removing a plugin later never
    changes an experiment."""
    from nnactive_core.plugins import registry

    installed = registry().names("strategy")
    return STANDARD_STARTING_BUDGET if STANDARD_STARTING_BUDGET in installed else CORE_STARTING_BUDGET


PREDICTION_MIRRORING = {"val_mirroring": True, "query_mirroring": False}
"""The defaults where the training profile cannot be read (the setup check then names the problem)."""


def profile_mirroring(config: ExperimentConfig, field: str) -> bool:
    """The profile's default for ``field`` (``val_mirroring`` or ``query_mirroring``), which holds
    only where its models train with mirroring: prediction can mirror only along stored mirror axes."""
    from nnactive_core.nnunet.profiles import get_profile

    try:
        profile = get_profile(config.training_profile, **config.training_overrides)
    except (ValueError, TypeError):
        return PREDICTION_MIRRORING[field]
    return bool(getattr(profile, field) and profile.mirroring)


def _profile(config: ExperimentConfig):
    from nnactive_core.nnunet.profiles import get_profile

    try:
        return get_profile(config.training_profile, **config.training_overrides)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"experiment config field 'training_overrides': {error}") from None
