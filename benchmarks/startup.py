"""Start-up cost (issue 28, target 2), each child a fresh interpreter with its bytecode cached
(as after ``pip install``: a private ``PYTHONPYCACHEPREFIX`` filled by one warm-up run, so a
``PYTHONDONTWRITEBYTECODE`` in the caller's environment cannot make us time the compiler):

- ``import``: ``python -c "import codexapi"`` against ``python -c "import openai"``, whole
  process wall time, paired and interleaved (the order flips every turn), the median of the
  per-pair ratios; beside it the median of ``-X importtime``'s cumulative figure for the
  ``codexapi`` package, in the same turns, and (for information) how long ``from codexapi
  import Client, ResponsesRequest`` takes (timed inside the child), the names a first call
  needs.
- ``chat_cold``: ``codexapi chat "Hello"`` with nothing configured (so it starts the embedded
  server, sends one turn and stops the server), whole process, paired with a bare interpreter
  start (``python -c pass``) to show the floor no command can go under.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from .cases import Case, Settings, Target, _child_env, _root

#: Issue 28, target 2.
MAX_IMPORTTIME = 0.080
MAX_IMPORT_RATIO = 0.2
MAX_CHAT_COLD = 0.250


def _env(scratch: str) -> dict[str, str]:
    env = _child_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(scratch, "pycache")
    # The chat command keeps its conversation under the data home: not the user's.
    env["XDG_DATA_HOME"] = os.path.join(scratch, "data")
    env["CODEXAPI_STATE_DIR"] = os.path.join(scratch, "state")
    return env


def _wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env, timeout=60, cwd=_root(),
                   stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def importtime(statement: str, env: dict[str, str], module: str = "codexapi") -> float:
    """``-X importtime``'s cumulative seconds for ``module`` while running ``statement``."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], check=True,
                         capture_output=True, text=True, env=env, timeout=60, cwd=_root())
    for line in out.stderr.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1]) / 1e6
    raise RuntimeError(f"-X importtime printed no line for {module}")


def in_turns(runs: dict[str, Callable[[], float]], turns: int) -> dict[str, list[float]]:
    """``turns`` results of each run, taken in turns (the order reversed every other turn),
    so that a drift in the machine's speed hits every run alike."""
    for run in runs.values():
        run()  # warm-up: bytecode written, files in the page cache
    out: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for turn in range(turns):
        for name in names[::-1] if turn % 2 else names:
            out[name].append(runs[name]())
    return out


def timed_statement(statement: str, env: dict[str, str]) -> float:
    """Seconds ``statement`` takes in a fresh interpreter (clocked inside it)."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env=env, timeout=60, cwd=_root())
    return float(out.stdout)


def _median_ratio(ta: list[float], tb: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(ta, tb, strict=True))


def import_time(s: Settings) -> Case:
    turns = 3 if s.quick else 21
    case = Case("import", f"import time (fresh interpreter, bytecode cached, {turns} pairs)")
    with tempfile.TemporaryDirectory() as scratch:
        env = _env(scratch)
        py = sys.executable
        first = "from codexapi import Client, ResponsesRequest"
        got = in_turns({"ours": lambda: _wall([py, "-c", "import codexapi"], env),
                        "theirs": lambda: _wall([py, "-c", "import openai"], env),
                        "own": lambda: importtime("import codexapi", env),
                        "use": lambda: timed_statement(first, env)}, turns)
    ours, theirs, own, use = got["ours"], got["theirs"], got["own"], got["use"]
    ratio = _median_ratio(ours, theirs)
    tc, to, ti = statistics.median(ours), statistics.median(theirs), statistics.median(own)
    case.codexapi = (f"{tc * 1e3:.0f} ms whole process; -X importtime {ti * 1e3:.0f} ms "
                     f"(with Client, ResponsesRequest: {statistics.median(use) * 1e3:.0f} ms)")
    case.openai = f"{to * 1e3:.0f} ms whole process"
    case.ratio = f"{ratio:.2f}x the time (median of {turns} paired ratios)"
    case.metrics = {"codexapi_s": tc, "openai_s": to, "ratio": ratio, "importtime_s": ti,
                    "importtime_first_call_s": statistics.median(use), "pairs": turns}
    case.targets.append(Target(f"import codexapi <= {MAX_IMPORTTIME * 1e3:.0f} ms "
                               "(-X importtime)", f"<= {MAX_IMPORTTIME * 1e3:.0f} ms", ti,
                               ti <= MAX_IMPORTTIME))
    case.targets.append(Target(f"import <= {MAX_IMPORT_RATIO}x openai's (whole process)",
                               f"<= {MAX_IMPORT_RATIO}x", ratio, ratio <= MAX_IMPORT_RATIO))
    return case


def codexapi_command() -> list[str]:
    """The installed ``codexapi`` script (what a user runs), else ``python -m codexapi``."""
    script = os.path.join(os.path.dirname(sys.executable), "codexapi")
    if os.access(script, os.X_OK):
        return [script]
    found = shutil.which("codexapi")
    return [found] if found else [sys.executable, "-m", "codexapi"]


def chat_cold(s: Settings) -> Case:
    turns = 3 if s.quick else 21
    case = Case("chat_cold", f'codexapi chat "Hello", cold, embedded server ({turns} pairs)')
    with tempfile.TemporaryDirectory() as scratch:
        env = _env(scratch)
        got = in_turns({"chat": lambda: _wall([*codexapi_command(), "chat", "Hello"], env),
                        "bare": lambda: _wall([sys.executable, "-c", "pass"], env)}, turns)
    chat, bare = got["chat"], got["bare"]
    tc, tb = statistics.median(chat), statistics.median(bare)
    ratio = _median_ratio(chat, bare)
    case.codexapi = f"{tc * 1e3:.0f} ms whole process"
    case.openai = f"n/a (bare interpreter start: {tb * 1e3:.0f} ms)"
    case.ratio = f"{ratio:.1f}x a bare interpreter start (median of {turns} paired ratios)"
    case.metrics = {"chat_s": tc, "bare_python_s": tb, "ratio_to_bare": ratio, "pairs": turns}
    case.targets.append(Target(f"chat cold <= {MAX_CHAT_COLD * 1e3:.0f} ms",
                               f"<= {MAX_CHAT_COLD * 1e3:.0f} ms", tc, tc <= MAX_CHAT_COLD))
    return case
