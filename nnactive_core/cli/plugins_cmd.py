"""``nnactive plugins``: which distributions provide what, which failed to load, and whether the
established nnActive package shares this environment (and with it the ``nnactive`` command)."""

from __future__ import annotations

import json

import click

from nnactive_core.plugins import PluginError, Registry, established_nnactive, load_registry


def _report(registry: Registry) -> dict:
    distributions = []
    for distribution in registry.distributions:
        provided = registry.provided_by(distribution)
        distributions.append(
            {
                "name": distribution.name,
                "version": distribution.version,
                "provides": {
                    kind: [
                        {"name": name, "description": registry.get(kind, name).description.strip()}
                        for name in names
                    ]
                    for kind, names in provided.items()
                    if names
                },
            }
        )
    problems = [
        {"name": p.distribution.name, "version": p.distribution.version, "error": p.error}
        for p in registry.problems
    ]
    return {"distributions": distributions, "problems": problems, "warnings": _warnings()}


def _warnings() -> list[str]:
    established = established_nnactive()
    if established is None:
        return []
    return [
        f"the established nnActive package ({established.name} {established.version}) is installed in this "
        "environment too; it also installs a command named `nnactive`, and whichever package was installed "
        "last owns it: keep the two in separate environments"
    ]


def _print_text(report: dict) -> None:
    for distribution in report["distributions"]:
        click.secho(f"{distribution['name']} {distribution['version']}", bold=True)
        for kind, entries in distribution["provides"].items():
            click.echo(f"  {kind}:")
            width = max(len(entry["name"]) for entry in entries)
            for entry in entries:
                click.echo(f"    {entry['name']:<{width}}  {entry['description']}")
    for problem in report["problems"]:
        click.secho(f"failed: {problem['name']} {problem['version']}: {problem['error']}", fg="red", err=True)


def _print_warnings(report: dict) -> None:
    for warning in report["warnings"]:
        click.secho(f"warning: {warning}", fg="yellow", err=True)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--check", is_flag=True, help="Exit non-zero if any plugin failed to load.")
def plugins(as_json: bool, check: bool) -> None:
    """List installed plugins, what each registered, and load errors; warn when the established
    nnActive package, which also installs a command `nnactive`, is installed alongside."""
    try:
        registry = load_registry()
    except PluginError as error:
        raise click.ClickException(str(error)) from None
    report = _report(registry)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_text(report)
    _print_warnings(report)
    if check and report["problems"]:
        raise SystemExit(1)
