"""Settings: groups of experiments that differ only in strategy and seed.

A setting is every ``config.json`` field except ``seed`` and ``strategy`` (what is compared) and
``device`` (where a run happened, which does not change what it measures). Defaults the config
resolves later (``starting_budget_size`` = ``query_size`` and friends) are filled in first, so a field
left at its default and the same value written out are one setting. Two experiments with any other
difference are never merged: when two settings would get the same readable folder name, each gets a
short hash of its full field set appended.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from nnactive_core.analysis.collect import ExperimentResults

NOT_SETTING_FIELDS = frozenset({"seed", "strategy", "device", "stop_when", "stop_set_size"})
"""Fields that vary within a setting or change no loop that runs (a run stopped early by
``stop_when`` belongs with the runs of its setting that went on)."""
_DEFAULTS_FROM = {
    "starting_budget_size": "query_size",
    "patches_per_case": "query_size",
    "train_folds": "folds",
}
_LEFT_OUT_AT_DEFAULT = {
    "budget_metric": "patches",
    "query_budget": None,
    "starting_query_budget": None,
    "warm_start": False,
    "ensemble": "folds",
}
"""Fields added after the first release, with the defaults that reproduce the loop experiments ran
before them: at their default they are left out, so an old config.json without them and a new one
with them are one setting (with the same key and slug)."""
_SLUG_FIELDS = (
    ("patch", "patch_size"),
    ("sb", "starting_budget"),
    ("sbs", "starting_budget_size"),
    ("qs", "query_size"),
    ("steps", "query_steps"),
    ("tr", "training_profile"),
)


@attrs.frozen(kw_only=True)
class Setting:
    base: str
    fields: dict[str, Any] = attrs.field(hash=False)
    key: str
    slug: str
    experiments: tuple[ExperimentResults, ...] = attrs.field(hash=False)

    @property
    def label(self) -> str:
        """``<base>/<slug>``: the setting's folder below the analysis output."""
        return f"{self.base}/{self.slug}"


def setting_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in config.items() if k not in NOT_SETTING_FIELDS}
    for field, source in _DEFAULTS_FROM.items():
        if field in fields and fields[field] is None:
            fields[field] = config.get(source)
    for field, default in _LEFT_OUT_AT_DEFAULT.items():
        if field in fields and fields[field] == default:
            del fields[field]
    return fields


def setting_key(fields: Mapping[str, Any]) -> str:
    return json.dumps(fields, sort_keys=True, default=str)


def _short(value: Any) -> str:
    text = "_".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
    return re.sub(r"[^A-Za-z0-9._\-]+", "-", text)


def readable_slug(fields: Mapping[str, Any]) -> str:
    parts = [f"{prefix}-{_short(fields[name])}" for prefix, name in _SLUG_FIELDS if name in fields]
    return "__".join(parts) or "setting"


def short_hash(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:8]


def group_settings(experiments: Iterable[ExperimentResults]) -> list[Setting]:
    """Experiments grouped by (base dataset, setting fields); sorted by base and slug."""
    groups: dict[tuple[str, str], list[ExperimentResults]] = {}
    fields_of: dict[tuple[str, str], dict[str, Any]] = {}
    for experiment in experiments:
        fields = setting_fields(experiment.config)
        group = (experiment.base, setting_key(fields))
        groups.setdefault(group, []).append(experiment)
        fields_of[group] = fields
    slugs: dict[tuple[str, str], int] = {}
    for base, key in groups:
        slug = (base, readable_slug(fields_of[(base, key)]))
        slugs[slug] = slugs.get(slug, 0) + 1
    settings = []
    for (base, key), members in groups.items():
        slug = readable_slug(fields_of[(base, key)])
        if slugs[(base, slug)] > 1:
            slug = f"{slug}__h-{short_hash(key)}"
        settings.append(
            Setting(
                base=base,
                fields=fields_of[(base, key)],
                key=key,
                slug=slug,
                experiments=tuple(sorted(members, key=lambda e: e.name)),
            )
        )
    return sorted(settings, key=lambda s: (s.base, s.slug))


def differing_fields(settings: Iterable[Setting]) -> dict[str, dict[str, Any]]:
    """Per setting label, the fields whose values are not the same in all ``settings`` of its base:
    what a reader needs to tell two settings with a hashed name apart."""
    settings = list(settings)
    result = {}
    for setting in settings:
        peers = [s for s in settings if s.base == setting.base]
        names = {name for s in peers for name in s.fields}
        varying = sorted(
            name
            for name in names
            if len({json.dumps(s.fields.get(name), sort_keys=True, default=str) for s in peers}) > 1
        )
        result[setting.label] = {name: setting.fields.get(name) for name in varying}
    return result
