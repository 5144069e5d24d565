"""``python -m benchmarks.batch`` keeps running: a tiny pass reports every row. No timing is
asserted (the numbers come from a full run, see docs/batch.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT


def test_tiny_batch_benchmark_reports_each_client_and_server() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEXAPI_"))}
    out = subprocess.run([sys.executable, "-m", "benchmarks.batch", "--requests", "30",
                          "--concurrency", "4", "--dask-requests", "0", "--repeats", "1",
                          "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    report = json.loads(out.stdout)
    rows = {r["server"]: r for r in report["threads"]}
    assert set(rows) == {"embedded", "prerendered"}
    for row in rows.values():
        assert row["requests"] == 30 and row["concurrency"] == 4
        assert set(row["requests_per_second"]) == {"codexapi", "openai", "raw"}
        assert row["ratio_vs_openai"] > 0 and row["fraction_of_raw"] > 0
