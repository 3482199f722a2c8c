"""Fenced code blocks of the documentation, with the markers that steer the docs tests.

Markers are HTML comments on the line right before a fence (invisible on the rendered page):

- ``<!-- file: PATH -->``: the block is the content of the file PATH (relative to the folder the
  tutorial runs in); the tutorial test writes it there instead of running it.
- ``<!-- docs-test: skip REASON -->``: the ``nnactive`` commands of this bash block are not checked
  against the CLI. REASON is required and says why (for example a command of another program that
  happens to be called ``nnactive``); CONTRIBUTING.md lists every use and why.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+)(?P<info>[^`]*)$")
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>file|docs-test):\s*(?P<value>.*?)\s*-->\s*$")
SKIP = re.compile(r"^skip\s+(?P<reason>\S.*)$")


@attrs.frozen(kw_only=True)
class Block:
    page: Path
    line: int
    """Line number (1-based) of the block's first content line."""
    language: str
    text: str
    file: str | None = None
    skip_reason: str | None = None

    @property
    def where(self) -> str:
        return f"{shown(self.page)}:{self.line}"


def shown(page: Path) -> str:
    """A page's path as a failure names it: relative to the checkout."""
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)


class MarkerError(ValueError):
    pass


def blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        language = opening["info"].strip().split(" ")[0].lower()
        end = index + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        if end == len(lines):
            raise MarkerError(f"{shown(page)}:{index + 1}: unclosed code block")
        body = "\n".join(line[indent:] for line in lines[index + 1 : end])
        file, skip_reason = _marker(page, lines, index)
        found.append(
            Block(
                page=page,
                line=index + 2,
                language=language,
                text=body + "\n" if body else "",
                file=file,
                skip_reason=skip_reason,
            )
        )
        index = end + 1
    return found


def _marker(page: Path, lines: list[str], fence_index: int) -> tuple[str | None, str | None]:
    if fence_index == 0:
        return None, None
    marker = MARKER.match(lines[fence_index - 1])
    if not marker:
        return None, None
    if marker["kind"] == "file":
        return marker["value"], None
    skip = SKIP.match(marker["value"])
    if not skip:
        raise MarkerError(
            f"{shown(page)}:{fence_index}: a docs-test marker must read "
            f"'<!-- docs-test: skip REASON -->', got {marker['value']!r}"
        )
    return None, skip["reason"]


def documentation_pages() -> list[Path]:
    """Every page whose commands are checked: the READMEs and ``docs/**/*.md``."""
    pages = [ROOT / "README.md", *sorted((ROOT / "plugins").glob("*/README.md"))]
    pages += sorted((ROOT / "docs").rglob("*.md"))
    return pages
