"""The layer rules in setup.cfg ([importlinter] contracts) hold: codexapi/ imports no plugin,
its modules import each other without cycles, the core does not reach up into the CLI, server
or test tools, and the first-party plugins do not import each other."""

from __future__ import annotations

import ast
import re
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


#: What code outside the core may import: the package, the plugin toolkit, and the packages
#: documented as such (the embedded server, the test tools, batch runs, the item and event
#: namespaces ``codexapi`` exports).
PUBLIC = {"codexapi", "codexapi.plugin_api", "codexapi.server", "codexapi.testing",
          "codexapi.batch", "codexapi.items", "codexapi.events"}


def _imported(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m == "codexapi" or m.startswith("codexapi.")}


def test_first_party_plugins_import_only_public_names() -> None:
    for path in sorted((ROOT / "plugins").glob("*.py")):
        private = _imported(ast.parse(path.read_text("utf-8"))) - PUBLIC
        assert not private, f"{path.name} imports {sorted(private)}"


def test_the_readme_and_docs_import_only_public_names() -> None:
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text("utf-8")
        for block in re.findall(r"```python\n(.*?)```", text, re.S):
            private = _imported(ast.parse(block)) - PUBLIC
            assert not private, f"{path.name} imports {sorted(private)}"


def test_the_plugin_toolkit_is_one_lazy_module_whose_names_agree() -> None:
    import codexapi.plugin_api as api

    tree = ast.parse((ROOT / "codexapi" / "plugin_api.py").read_text("utf-8"))
    typed = {alias.asname or alias.name for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) and node.level == 1
             for alias in node.names}
    assert typed == set(api._EXPORTS) == set(api.__all__)
    assert all(getattr(api, name) is not None for name in api.__all__)
    code = ("import sys, codexapi.plugin_api; print(sorted(m for m in sys.modules if "
            "m.startswith(('codexapi', 'urllib3'))))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert run.stdout.strip() == "['codexapi', 'codexapi._version', 'codexapi.plugin_api']"
