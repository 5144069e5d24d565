"""docs/otel.md runs as written: each Python block runs in a fresh interpreter (the first one
sets the process-wide tracer and meter providers, which can be set only once per process) and
prints exactly the ``text`` block that follows it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

DOC = (ROOT / "docs" / "otel.md").read_text(encoding="utf-8")
#: Each Python example and the output the page says it prints.
EXAMPLES = re.findall(r"```python\n(.*?)```\n\nprints\n\n```text\n(.*?)```", DOC, flags=re.DOTALL)


def run(source: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("OTEL_", "OPENAI_", "CODEXAPI_"))}
    out = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                         timeout=60, env={**clean, **env}, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_every_python_block_shows_its_output() -> None:
    assert len(EXAMPLES) == len(re.findall(r"```python\n", DOC)) == 3


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_the_example_prints_what_the_page_says(index: int) -> None:
    source, expected = EXAMPLES[index]
    assert run(source) == expected


def test_the_documented_switches_do_what_the_page_says() -> None:
    source = EXAMPLES[0][0]
    assert "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true" in DOC
    assert "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=codexapi" in DOC
    probe = source + '\nprint("gen_ai.input.messages" in call.attributes)\n'
    assert run(probe, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true").endswith(
        "True\n")
    assert run(probe).endswith("False\n")
    # Disabled, the plugin sends no trace context: the example stops where it reads it.
    disabled = subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "flask, codexapi"})
    assert disabled.returncode != 0 and "KeyError: 'traceparent'" in disabled.stderr
