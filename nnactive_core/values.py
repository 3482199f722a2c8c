"""Values written as text, on the command line and in config files: integer lists (patch sizes,
strides), ``KEY=VALUE`` assignments and the typing of their values. One syntax everywhere:

- integers are separated by commas, spaces, ``_`` or ``x``: ``20,20,20``, ``"20 20 20"``,
  ``20_20_20`` (as in experiment names) and ``20x20x20`` are the same patch size; one number stands
  for every axis;
- ``KEY=VALUE``: the key is everything before the first ``=``; typed values are JSON (``5``, ``0.5``,
  ``true``, ``[16, 16, 16]``, ``{"a": 1}``), or a TOML inline table or array (``{epochs = 2}``),
  and anything else stays text (``random-label``, ``cuda:0``, ``20_20_20``).

>>> parse_ints("20 20,20")
(20, 20, 20)
>>> parse_key_values(["epochs=2", "device=cuda:0"], "--train-option")
{'epochs': 2, 'device': 'cuda:0'}
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

INTEGER_SEPARATORS = re.compile(r"[\s,_x]+")


def parse_ints(text: str, what: str = "value", count: tuple[int, ...] = ()) -> tuple[int, ...]:
    """The integers of ``text``; ``count`` lists the accepted numbers of values (any, if empty)."""
    parts = [part for part in INTEGER_SEPARATORS.split(str(text).strip()) if part]
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        raise ValueError(f"{what}: expected integers, got {text!r}") from None
    if not values or (count and len(values) not in count):
        wanted = " or ".join(str(c) for c in count) or "at least 1"
        raise ValueError(f"{what}: expected {wanted} integer(s), got {text!r}")
    return values


def parse_triple(text: str, what: str = "value") -> tuple[int, int, int]:
    """Three integers (z, y, x), or one used on every axis."""
    values = parse_ints(text, what, (1, 3))
    return values * 3 if len(values) == 1 else values  # type: ignore[return-value]


def parse_value(text: str) -> Any:
    """A typed value: JSON, else a TOML inline table or array, else the text itself."""
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    if stripped[:1] in ("[", "{"):
        try:
            return tomllib.loads(f"value = {stripped}")["value"]
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"cannot read {text!r}: {error}") from None
    return text


def parse_key_values(items: Iterable[str], what: str, *, typed: bool = True) -> dict[str, Any]:
    """``["a=1", "b=x=y"]`` -> ``{"a": 1, "b": "x=y"}``; ``typed=False`` keeps every value as text.
    A later key replaces an earlier one."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} {item!r} is not KEY=VALUE")
        try:
            parsed[key.strip()] = parse_value(value) if typed else value
        except ValueError as error:
            raise ValueError(f"{what} {item!r}: {error}") from None
    return parsed
