"""Plugin discovery against really installed distributions: broken, invalid and clashing plugins."""

from __future__ import annotations

import json

import pytest
from installed_plugins import (
    BROKEN_PLUGIN,
    INVALID_PLUGIN,
    STRATEGY_PLUGIN,
    install_plugin,
    install_project,
    run_nnactive,
)

from nnactive_core.plugins import UnknownNameError, load_registry


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Separate install targets per scenario, so each test chooses which plugins are visible."""
    root = tmp_path_factory.mktemp("plugins")
    targets = {name: root / name for name in ("broken", "invalid", "clash", "good", "established")}
    work = root / "src"
    install_plugin(targets["broken"], work, "nnactive-broken-plugin", BROKEN_PLUGIN)
    install_plugin(targets["invalid"], work, "nnactive-invalid-plugin", INVALID_PLUGIN)
    install_plugin(
        targets["good"],
        work,
        "nnactive-good-plugin",
        STRATEGY_PLUGIN.format(strategy="good-one", dist="nnactive-good-plugin"),
    )
    for dist in ("nnactive-clash-a", "nnactive-clash-b"):
        install_plugin(targets["clash"], work, dist, STRATEGY_PLUGIN.format(strategy="clash", dist=dist))
    install_project(targets["established"], established_nnactive(work / "nnactive"))
    return targets


def established_nnactive(project):
    """A stand-in that claims what the established nnActive installs: the distribution ``nnactive``, the
    import package ``nnactive`` and a console script ``nnactive``."""
    (project / "nnactive").mkdir(parents=True)
    (project / "nnactive" / "__init__.py").write_text("def main():\n    print('established nnActive')\n")
    (project / "pyproject.toml").write_text(
        "[build-system]\n"
        'requires = ["setuptools>=61"]\n'
        'build-backend = "setuptools.build_meta"\n\n'
        "[project]\n"
        'name = "nnactive"\n'
        'version = "2.0.1"\n\n'
        "[project.scripts]\n"
        'nnactive = "nnactive:main"\n\n'
        "[tool.setuptools]\n"
        'packages = ["nnactive"]\n'
    )
    return project


def test_broken_plugin_breaks_neither_help_nor_plugins(installed):
    help_run = run_nnactive(["--help"], installed["broken"], installed["good"])
    assert help_run.returncode == 0, help_run.stderr
    assert "Commands" in help_run.stdout

    listing = run_nnactive(["plugins", "--json"], installed["broken"], installed["good"])
    assert listing.returncode == 0, listing.stderr
    report = json.loads(listing.stdout)
    problem = next(p for p in report["problems"] if p["name"] == "nnactive-broken-plugin")
    assert problem["version"] == "1.2.3"
    assert "a_module_that_does_not_exist" in problem["error"]
    good = next(d for d in report["distributions"] if d["name"] == "nnactive-good-plugin")
    assert [s["name"] for s in good["provides"]["strategy"]] == ["good-one"]

    text = run_nnactive(["plugins"], installed["broken"])
    assert "nnactive-broken-plugin 1.2.3" in text.stderr


def test_check_flag_fails_on_broken_plugin(installed):
    assert run_nnactive(["plugins", "--check"], installed["good"]).returncode == 0
    assert run_nnactive(["plugins", "--check"], installed["broken"]).returncode != 0


def test_strict_mode_turns_report_into_error(installed):
    run = run_nnactive(["plugins"], installed["broken"], NNACTIVE_STRICT_PLUGINS="1")
    assert run.returncode != 0
    assert "nnactive-broken-plugin" in run.stderr
    assert "Traceback" not in run.stderr


def test_disable_skips_distribution(installed):
    run = run_nnactive(
        ["plugins", "--json", "--check"],
        installed["broken"],
        NNACTIVE_DISABLE_PLUGINS="nnactive-broken-plugin",
    )
    assert run.returncode == 0, run.stderr
    assert not json.loads(run.stdout)["problems"]


def test_invalid_registration_is_reported(installed):
    report = json.loads(run_nnactive(["plugins", "--json"], installed["invalid"]).stdout)
    problem = next(p for p in report["problems"] if p["name"] == "nnactive-invalid-plugin")
    assert "ScoreStrategy or PlacementStrategy" in problem["error"]


def test_duplicate_name_names_both_distributions(installed):
    report = json.loads(run_nnactive(["plugins", "--json"], installed["clash"]).stdout)
    errors = [p["error"] for p in report["problems"]]
    assert len(errors) == 1
    assert "nnactive-clash-a 1.2.3" in errors[0] and "nnactive-clash-b 1.2.3" in errors[0]
    owners = [
        d["name"]
        for d in report["distributions"]
        if "strategy" in d["provides"] and any(s["name"] == "clash" for s in d["provides"]["strategy"])
    ]
    assert owners == ["nnactive-clash-a"]


def test_unknown_strategy_lists_installed_names():
    registry = load_registry()
    with pytest.raises(UnknownNameError) as error:
        registry.get("strategy", "does-not-exist")
    message = str(error.value)
    assert "strategy 'does-not-exist' is not recognized; installed: " in message
    assert "random" in message and "nnactive plugins" in message


def test_core_registers_its_builtins_through_the_hooks():
    registry = load_registry()
    assert not [p for p in registry.problems if p.distribution.name == "nnactive-core"]
    core = next(d for d in registry.distributions if d.name == "nnactive-core")
    provided = registry.provided_by(core)
    assert "random" in provided["strategy"]
    assert {"nnunet-raw", "demo"} <= set(provided["dataset adapter"])
    assert {"local", "commands"} <= set(provided["launcher"])
    assert provided["cost metric"]


def test_established_nnactive_beside_the_core_is_warned_about(installed):
    text = run_nnactive(["plugins", "--check"], installed["established"], installed["good"])
    assert text.returncode == 0, text.stderr
    assert "nnactive-good-plugin 1.2.3" in text.stdout
    warning = "warning: the established nnActive package (nnactive 2.0.1) is installed in this environment"
    assert warning in text.stderr
    assert "command named `nnactive`" in text.stderr

    listing = run_nnactive(["plugins", "--json"], installed["established"])
    report = json.loads(listing.stdout)
    assert len(report["warnings"]) == 1 and "nnactive 2.0.1" in report["warnings"][0]
    assert not [d for d in report["distributions"] if d["name"] == "nnactive"]


def test_no_warning_without_the_established_package(installed):
    run = run_nnactive(["plugins", "--json"], installed["good"])
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["warnings"] == []
    assert "established nnActive" not in run.stderr
