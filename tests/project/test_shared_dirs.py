"""Tests that read ../shared skip on a bare clone, naming the folder, and fail under CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_shared, under_ci

HERE = Path(__file__).resolve().parent


def test_a_present_folder_is_returned(tmp_path: Path) -> None:
    (tmp_path / "reference").mkdir()
    assert require_shared("reference", shared=tmp_path, environ={}) == tmp_path / "reference"
    assert require_shared("reference", shared=tmp_path, environ={"CI": "true"}).is_dir()


def test_a_missing_folder_skips_off_ci(tmp_path: Path) -> None:
    with pytest.raises(pytest.skip.Exception) as info:
        require_shared("real-cassettes", shared=tmp_path, environ={})
    assert "../shared/real-cassettes" in str(info.value)
    assert str(tmp_path / "real-cassettes") in str(info.value)


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_a_missing_folder_fails_under_ci(tmp_path: Path, value: str) -> None:
    with pytest.raises(pytest.fail.Exception) as info:
        require_shared("reference", shared=tmp_path, environ={"CI": value})
    assert "../shared/reference" in str(info.value) and "failure, not a skip" in str(info.value)


def test_ci_flag_values() -> None:
    assert under_ci({"CI": "true"}) and under_ci({"CI": "1"})
    assert not under_ci({}) and not under_ci({"CI": ""}) and not under_ci({"CI": "false"})


TEST_FILE = '''
import pytest

@pytest.mark.shared("real-cassettes")
def test_reads_shared():
    pass

def test_plain():
    pass
'''


def _run_copy(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    """pytest on a copy of the test setup with no shared/ beside it (a bare clone)."""
    repo = tmp_path / "clone"
    (repo / "tests").mkdir(parents=True)
    shutil.copy(HERE.parent / "conftest.py", repo / "tests" / "conftest.py")
    (repo / "tests" / "test_it.py").write_text(TEST_FILE)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "CODEXAPI_SHARED")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only conftest.py is under test: start fast
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "tests"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120)


def test_bare_clone_run_skips_and_names_the_folder(tmp_path: Path) -> None:
    proc = _run_copy(tmp_path, None)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 1 skipped" in proc.stdout
    assert "needs ../shared/real-cassettes" in proc.stdout
    assert str(tmp_path / "shared" / "real-cassettes") in proc.stdout


def test_bare_clone_run_under_ci_fails(tmp_path: Path) -> None:
    proc = _run_copy(tmp_path, "true")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 passed, 1 error" in proc.stdout
    assert "under CI this is a failure, not a skip" in proc.stdout
