"""docs/batch.md runs as written, in a scratch directory: its script is saved and the shell
block runs it and the command (offline, against the embedded server); every other Python block
is executed (each asserts its own results)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

DOC = (ROOT / "docs" / "batch.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)
SCRIPTS = {m.group(1): b for b in BLOCKS if (m := re.match(r"# (\w+)\.py: ", b))}
SNIPPETS = [b for b in BLOCKS if not re.match(r"# \w+\.py: ", b)]
SHELL = re.findall(r"```sh\n(.*?)```", DOC, flags=re.DOTALL)


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEXAPI_"))}
    clean["PATH"] = os.path.dirname(sys.executable) + os.pathsep + clean.get("PATH", "")
    return clean


def test_the_cli_walkthrough(tmp_path: Path) -> None:
    for name, source in SCRIPTS.items():
        (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
    outputs = []
    for line in SHELL[0].splitlines():
        command = line.split("#", 1)[0].strip()
        if not command:
            continue
        proc = subprocess.run(command, shell=True, cwd=tmp_path, env=env(),
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, (command, proc.stderr)
        outputs.append(proc.stdout)
    results = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in results) == ["q0", "q1", "q2"]
    assert {r["text"] for r in results} >= {"You said: Say hello."}
    assert "3 ok, 0 failed, 0 left" in outputs[1]
    summary = json.loads(outputs[2])
    assert (summary["skipped"], summary["ok"]) == (3, 0)
    # The sample summary on the page shows real keys.
    sample = re.search(r'\{"total".*\}', DOC)
    assert sample is not None
    assert set(re.findall(r'"(\w+)":', sample.group(0))) <= set(summary)


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_python_examples(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(SNIPPETS[index], f"docs/batch.md[python {index}]", "exec"), {})


def test_the_page_names_every_public_batch_name_and_flag() -> None:
    from codexapi import batch

    for name in batch.__all__:
        if name not in ("ENGINES", "ResultLog", "Summary", "read_jobs"):
            assert name in DOC, name
    from codexapi.cli.commands import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["batch"]  # type: ignore[union-attr]
    for action in sub._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert flag in DOC, flag
