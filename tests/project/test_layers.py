"""The layer rules in setup.cfg ([importlinter] contracts) hold: codexapi/ imports no plugin,
its modules import each other without cycles, the core does not reach up into the CLI, server
or test tools, and the first-party plugins do not import each other."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_import_linter_contracts_are_kept() -> None:
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command;"
         " sys.argv = ['lint-imports', 'setup.cfg']; lint_imports_command()"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Contracts: 5 kept, 0 broken." in run.stdout, run.stdout


def test_codexapi_exposes_the_auth_classes_without_importing_a_plugin() -> None:
    code = ("import sys, codexapi; codexapi.BearerAuth('k'); codexapi.NoAuth();"
            " print(sorted(m for m in sys.modules if m.startswith('codexapi_plugins')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert run.stdout.strip() == "[]"
