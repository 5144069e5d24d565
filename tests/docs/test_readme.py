"""The README's commands and examples run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(python_blocks(README))))
def test_readme_python_examples_run(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(python_blocks(README)[index], f"README.md[python {index}]", "exec"), {})


def test_offline_chat_command_streams_the_answer(tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("codexapi")
    proc = subprocess.run([str(cli), "chat", "Hello"], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent",
                                           "CODEXAPI_STATE_DIR": str(tmp_path / "state")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "You said: Hello"


def test_readme_starts_with_the_two_fresh_machine_commands() -> None:
    commands = re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)
    # The first installs only what the main job needs, and chats.
    assert "pip install -e . &&" in commands[0] and "codexapi chat" in commands[0]
    assert "[test]" not in commands[0]
    # The second adds the test extras, the pinned Codex CLI, and runs the tests.
    assert "pip install -e '.[test]'" in commands[1] and "pytest" in commands[1]
    assert ".ci/install-codex-cli" in commands[1]
    # The README says what that installs, and where.
    for words in ("@openai/codex@0.171.0", "~/.cache/codexapi/codex-cli-0.171.0",
                  "CODEXAPI_CODEX_CLI_DIR"):
        assert words in README, words


def test_ci_runs_the_two_readme_commands_verbatim_before_any_pip_upgrade() -> None:
    commands = [c.strip() for c in re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)[:2]]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    at = [ci.index(command) for command in commands]  # each a line of its own, as written
    assert at == sorted(at)
    # Nothing else is installed before or between them: CI follows the README exactly.
    steps = [line for line in ci[:at[-1] + 1] if line.strip() and not line.lstrip().startswith(
        "#")]
    assert not [line for line in steps if "install" in line and line not in commands]
    assert not any("pip" in line and "upgrade" in line for line in ci[:at[-1]]
               if not line.lstrip().startswith("#"))
    # Debian's python3 first on PATH for them when there is one.
    before = "\n".join(ci[:at[0]])
    assert "/usr/bin/python3" in before and 'export PATH="$(dirname "$py"):$PATH"' in before


def test_the_secrets_example_prints_what_the_readme_says(
        capsys: pytest.CaptureFixture[str]) -> None:
    section = README.split("### What is a secret", 1)[1]
    block = python_blocks(section)[0]
    printed = re.search(r"prints\n\n```\n(.*?)```", section, flags=re.DOTALL)
    assert printed is not None
    exec(compile(block, "README.md[secrets]", "exec"), {})
    assert capsys.readouterr().out == printed.group(1)
