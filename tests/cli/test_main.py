"""The CLI entry point stays light: ``--help`` must not import torch or nnU-Net."""

import subprocess
import sys

PROBE = """
import sys
from nnactive_core.cli.main import cli
try:
    cli(["--help"])
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "nnunetv2", "SimpleITK", "matplotlib", "pandas") if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


def test_help_imports_nothing_heavy():
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert "HEAVY:\n" in run.stdout, run.stdout


def test_plugins_listing_imports_nothing_heavy():
    probe = PROBE.replace('cli(["--help"])', 'cli(["plugins", "--json"])')
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "HEAVY:\n" in run.stdout, run.stdout + run.stderr
