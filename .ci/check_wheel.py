"""Check a built wheel holds what an installed codexapi needs: ``py.typed``, the first-party
plugins package, and every entry point setup.cfg declares (the ``codexapi`` console script,
the ``pytest11`` plugin, any ``codexapi`` plugin group), exactly as declared.

usage: python .ci/check_wheel.py dist/codexapi-X-py3-none-any.whl
"""

from __future__ import annotations

import configparser
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIRED_FILES = ("codexapi/py.typed", "codexapi/cli/__init__.py", "codexapi/http/transport.py",
                  "codexapi/server/__init__.py",
                  "codexapi/testing/pytest_plugin.py", "codexapi_plugins/__init__.py")
REQUIRED_GROUPS = {"console_scripts": "codexapi", "pytest11": "codexapi"}


def declared() -> dict[str, dict[str, str]]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    groups: dict[str, dict[str, str]] = {}
    for group, text in cfg["options.entry_points"].items():
        entries = (line.split("=", 1) for line in text.strip().splitlines() if line.strip())
        groups[group] = {name.strip(): value.strip() for name, value in entries}
    return groups


def main(wheel_path: str) -> int:
    problems: list[str] = []
    with zipfile.ZipFile(wheel_path) as wheel:
        names = set(wheel.namelist())
        problems += [f"missing {name}" for name in REQUIRED_FILES if name not in names]
        eps = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        if len(eps) != 1:
            problems.append(f"expected one entry_points.txt, found {eps}")
            in_wheel: dict[str, dict[str, str]] = {}
        else:
            parsed = configparser.ConfigParser()
            parsed.optionxform = str  # type: ignore[assignment,method-assign]
            parsed.read_string(wheel.read(eps[0]).decode())
            in_wheel = {g: dict(parsed[g]) for g in parsed.sections()}
    want = declared()
    for group, name in REQUIRED_GROUPS.items():
        if name not in want.get(group, {}):
            problems.append(f"setup.cfg declares no {group} entry point {name!r}")
    for group, entries in want.items():
        if in_wheel.get(group) != entries:
            problems.append(f"entry point group [{group}]: wheel has {in_wheel.get(group)}, "
                            f"setup.cfg declares {entries}")
    for problem in problems:
        print(f"check_wheel: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_wheel: {Path(wheel_path).name} OK: py.typed, codexapi_plugins, entry "
              f"point groups {', '.join(sorted(in_wheel))}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
