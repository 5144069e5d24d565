"""``python -m benchmarks [--quick] [--json] [--only CASE ...]``: codexapi vs openai-python.

Every case runs both clients on the same bytes in the same run and prints the ratio; the targets
of issue 8 are checked against those ratios and printed as PASS/MISS. The table is Markdown, so
a run can be pasted into the README as is.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from importlib.metadata import version

import attrs

from .cases import CASE_NAMES, Case, Settings, run_all


def environment() -> dict[str, str]:
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "python": platform.python_version(),
        **{name: version(name) for name in ("codexapi", "openai", "urllib3", "orjson")},
    }


def table(cases: list[Case]) -> str:
    rows = [("case", "codexapi", "openai-python", "ratio"), ("---",) * 4]
    for c in cases:
        if c.skipped:
            rows.append((c.title, "n/a", "n/a", f"skipped: {c.skipped}"))
        else:
            rows.append((c.title, c.codexapi, c.openai, c.ratio))
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", "| target | measured | result |", "| --- | --- | --- |"]
    for c in cases:
        for t in c.targets:
            lines.append(f"| {t.name} | {_fmt(t.value, t.goal)} | "
                         f"{'PASS' if t.passed else 'MISS'} |")
    return "\n".join(lines)


def _fmt(value: float, goal: str) -> str:
    if goal.endswith("%"):
        return f"{value:.0%}"
    if "MiB" in goal:
        return f"{round(value / 2**20, 1) + 0.0:+.1f} MiB"
    if goal.endswith("ms"):
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small bodies, one repeat (smoke)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--only", nargs="+", choices=CASE_NAMES, help="run only these cases")
    args = parser.parse_args(argv)
    settings = Settings(quick=args.quick)
    env = environment()

    def progress(name: str) -> None:
        if not args.json:
            print(f"  running {name} ...", file=sys.stderr, flush=True)

    cases = run_all(settings, set(args.only or ()), progress)
    if args.json:
        print(json.dumps({"environment": env, "quick": args.quick,
                          "cases": [attrs.asdict(c) for c in cases]}, indent=2))
    else:
        print("  ".join(f"{k}: {v}" for k, v in env.items()))
        print()
        print(table(cases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
