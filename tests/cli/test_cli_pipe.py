"""The CLI stops quietly when its reader goes away."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_closed_pipe_is_not_a_traceback() -> None:
    cli = Path(sys.executable).with_name("codexapi")
    # `chat -` with a long stdin prompt echoes it back: far more than one read of `head -c 1`.
    proc = subprocess.run(
        f"'{cli}' chat - --json | head -c 1", shell=True, input="word " * 20000,
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    assert proc.stdout == "{"
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
