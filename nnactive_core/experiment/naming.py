"""Experiment names: the established form
``<Dataset>__patch-Z_Y_X__sb-<start>__sbs-N__qs-N__unc-<strategy>__seed-N``, the parts that only
non-default options add after the seed, and the parser that reads every field back and says which part
of a wrong name is wrong."""

from __future__ import annotations

import re
from typing import Any, Protocol

import attrs

DATASET_PATTERN = re.compile(r"^Dataset(\d+)_(.+)$")
ENSEMBLES = ("folds", "snapshots")
"""``folds``: one model per trained fold (established); ``snapshots``: one training per trained fold
(by default one), whose members are its weights at the ends of the last learning-rate cycles."""


class NamedConfig(Protocol):
    """What a name is made of: the fields of an ``ExperimentConfig`` that the name states."""

    base_short_name: str
    patch_size: tuple[int, int, int]
    starting_budget: str
    sbs: int
    query_size: int
    strategy: str
    seed: int
    budgeted: bool
    budget_metric: str
    query_budget: float | None
    starting_query_budget: float | None
    warm_start: bool
    warm_epochs: int | None
    ensemble: str


_NAME_PATTERN = re.compile(
    r"^(?P<dataset>.+?)__patch-(?P<patch>\d+_\d+_\d+)__sb-(?P<starting_budget>.+?)"
    r"__sbs-(?P<starting_budget_size>\d+)__qs-(?P<query_size>\d+)__unc-(?P<strategy>.+?)"
    r"__seed-(?P<seed>-?\d+)"
    r"(?:__bm-(?P<budget_metric>[a-z0-9][a-z0-9_\-]*?)-qb(?P<query_budget>\d+(?:\.\d+)?)"
    r"(?:-sb(?P<starting_query_budget>\d+(?:\.\d+)?))?)?"
    r"(?:__ws-(?P<warm_epochs>\d+))?(?:__ens-(?P<ensemble>snapshots))?$"
)


def format_name(config: NamedConfig) -> str:
    """``<Base>__patch-Z_Y_X__sb-<start>__sbs-N__qs-N__unc-<strategy>__seed-N``, then only for options
    that differ from the established loop ``__ws-<warm epochs>`` (warm start) and ``__ens-<ensemble>``."""
    patch = "_".join(str(v) for v in config.patch_size)
    name = (
        f"{config.base_short_name}__patch-{patch}__sb-{config.starting_budget}__sbs-{config.sbs}"
        f"__qs-{config.query_size}__unc-{config.strategy}__seed-{config.seed}"
        f"{budget_name_part(config)}"
    )
    if config.warm_start:
        name += f"__ws-{config.warm_epochs}"
    if config.ensemble != "folds":
        name += f"__ens-{config.ensemble}"
    return name


def _amount(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def named_budget(config: NamedConfig) -> tuple[str | None, float | None, float | None]:
    """(metric, query budget, starting budget) as the name states them; all None when unbudgeted."""
    if not config.budgeted:
        return (None, None, None)
    query_budget = config.query_budget if config.query_budget is not None else config.query_size
    return (config.budget_metric, query_budget, config.starting_query_budget)


def budget_name_part(config: NamedConfig) -> str:
    """``__bm-<metric>-qb<query budget>[-sb<starting budget>]`` for a budgeted experiment, else empty
    (established names stay as they are)."""
    metric, query_budget, starting = named_budget(config)
    if metric is None:
        return ""
    start = "" if starting is None else f"-sb{_amount(starting)}"
    return f"__bm-{metric}-qb{_amount(query_budget)}{start}"


@attrs.frozen(kw_only=True)
class ParsedName:
    """The fields an experiment name encodes (the base dataset without its id)."""

    dataset: str
    patch_size: tuple[int, int, int]
    starting_budget: str
    starting_budget_size: int
    query_size: int
    strategy: str
    seed: int
    budget_metric: str | None = None
    query_budget: float | None = None
    starting_query_budget: float | None = None
    warm_epochs: int | None = None
    """``__ws-N``: a warm-started experiment (None: every loop trains from scratch)."""
    ensemble: str | None = None
    """``__ens-<ensemble>``: a non-default ensemble (None: ``folds``)."""

    def budget_fields(self) -> dict[str, Any]:
        """The budget fields of a config with this name (none for an unbudgeted name)."""
        if self.budget_metric is None:
            return {}
        fields: dict[str, Any] = {"budget_metric": self.budget_metric, "query_budget": self.query_budget}
        if self.starting_query_budget is not None:
            fields["starting_query_budget"] = self.starting_query_budget
        return fields

    def matches(self, config: NamedConfig) -> bool:
        return (
            (self.budget_metric, self.query_budget, self.starting_query_budget) == named_budget(config)
            and self.dataset == config.base_short_name
            and self.patch_size == config.patch_size
            and self.starting_budget == config.starting_budget
            and self.starting_budget_size == config.sbs
            and self.query_size == config.query_size
            and self.strategy == config.strategy
            and self.seed == config.seed
            and self.warm_epochs == config.warm_epochs
            and (self.ensemble or "folds") == config.ensemble
        )


NAME_FORM = (
    "<Dataset>__patch-Z_Y_X__sb-<start>__sbs-N__qs-N__unc-<strategy>__seed-N"
    "[__bm-<metric>-qbN[-sbN]][__ws-N][__ens-<ensemble>]"
)
_NAME_PARTS = (
    ("patch", r"\d+_\d+_\d+", "the patch size Z_Y_X"),
    ("sb", r".+", "the starting budget strategy"),
    ("sbs", r"\d+", "the starting budget size, an integer"),
    ("qs", r"\d+", "the query size, an integer"),
    ("unc", r".+", "the query strategy"),
    ("seed", r"-?\d+", "the seed, an integer"),
)
_OPTIONAL_PARTS = (
    (
        "bm",
        r"[a-z0-9][a-z0-9_\-]*?-qb\d+(?:\.\d+)?(?:-sb\d+(?:\.\d+)?)?",
        "the budget metric, '-qb' and the query budget, optionally '-sb' and the starting budget",
    ),
    ("ws", r"\d+", "the epochs of a warm-started fold, an integer"),
    ("ens", "|".join(e for e in ENSEMBLES if e != "folds"), f"an ensemble ({', '.join(ENSEMBLES[1:])})"),
)


def _name_problem(name: str) -> str:
    """Which part of a name that does not parse is wrong (parts are separated by ``__``)."""
    parts = name.split("__")
    if not parts[0]:
        return "it does not start with the base dataset's name"
    for index, (key, pattern, meaning) in enumerate(_NAME_PARTS, start=1):
        if index >= len(parts):
            return f"part {index + 1} is missing: expected '{key}-...' ({meaning})"
        part = parts[index]
        if not part.startswith(f"{key}-"):
            return f"part {index + 1} {part!r} should be '{key}-...' ({meaning})"
        if not re.fullmatch(pattern, part[len(key) + 1 :]):
            return f"part {index + 1} {part!r}: after '{key}-' should come {meaning}"
    rest = parts[len(_NAME_PARTS) + 1 :]
    optional = list(_OPTIONAL_PARTS)
    for index, part in enumerate(rest, start=len(_NAME_PARTS) + 2):
        keys = [key for key, _, _ in optional]
        key = part.split("-", 1)[0]
        if key not in keys:
            extra = "__".join(rest[index - len(_NAME_PARTS) - 2 :])
            expected = " or ".join(f"'{k}-...'" for k in keys) or "nothing"
            return f"unexpected text after the seed: {extra!r} (expected {expected}, in this order)"
        _, pattern, meaning = optional[keys.index(key)]
        if not re.fullmatch(pattern, part[len(key) + 1 :]):
            return f"part {index} {part!r}: after '{key}-' should come {meaning}"
        optional = optional[keys.index(key) + 1 :]
    return "it does not match the form"


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    return float(text) if "." in text else int(text)


def parse_name(name: str) -> ParsedName:
    """Inverse of :func:`format_name`; a ``DatasetNNN_`` folder prefix is accepted and dropped. A
    name that does not parse raises a ValueError saying which part is wrong."""
    match = _NAME_PATTERN.match(strip_folder_prefix(name))
    if not match:
        raise ValueError(
            f"{name!r} is not an experiment name of the form {NAME_FORM}: "
            f"{_name_problem(strip_folder_prefix(name))}"
        )
    return ParsedName(
        dataset=match["dataset"],
        patch_size=tuple(int(v) for v in match["patch"].split("_")),  # type: ignore[arg-type]
        starting_budget=match["starting_budget"],
        starting_budget_size=int(match["starting_budget_size"]),
        query_size=int(match["query_size"]),
        strategy=match["strategy"],
        seed=int(match["seed"]),
        budget_metric=match["budget_metric"],
        query_budget=_number(match["query_budget"]),
        starting_query_budget=_number(match["starting_query_budget"]),
        warm_epochs=int(match["warm_epochs"]) if match["warm_epochs"] is not None else None,
        ensemble=match["ensemble"],
    )


def strip_folder_prefix(name: str) -> str:
    """``Dataset012_Demo__patch-...`` -> ``Demo__patch-...``; other names are returned unchanged."""
    match = DATASET_PATTERN.match(name)
    return match.group(2) if match and "__patch-" in match.group(2) else name
