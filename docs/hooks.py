"""mkdocs hook: the docstrings cross-reference with Sphinx roles (``:class:`~pkg.mod.Name```), which
mkdocstrings leaves as text. Each becomes an optional autorefs link: to the object's API entry where
the reference documents it, plain code where it does not (``~`` shows only the last name, as in Sphinx)."""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):<code>(?P<tilde>~?)(?P<target>[\w.]+)</code>")


def on_page_content(html: str, **kwargs) -> str:
    return ROLE.sub(_autoref, html)


def _autoref(match: re.Match) -> str:
    target = match["target"]
    title = target.rsplit(".", 1)[-1] if match["tilde"] else target
    return f'<autoref identifier="{target}" optional><code>{title}</code></autoref>'
