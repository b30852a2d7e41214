"""Cold start: how long importing each function module takes in a fresh interpreter, and proof
that none of them imports a provider SDK (twilio's REST client, telnyx, bandwidth, nacl).

Run: `.venv/bin/python -m bench.cold_start [--runs 5]`. Each function folder (one with a
function.json) is imported `--runs` times, each time in a new Python process, as the Functions
worker does on a cold instance; prints the median and the worst per function. Target: every
import under 300 ms (docs/carriers.md has the measured figures).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 300.0
# Provider SDKs a function module must not load: slow to import, and not needed to serve a
# request. (`twilio.request_validator` is allowed, and loaded only when a request is verified.)
FORBIDDEN = ("twilio", "telnyx", "bandwidth", "nacl")

_PROBE = """
import json, sys, time
started = time.perf_counter()
import {name}
elapsed = (time.perf_counter() - started) * 1000
forbidden = sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})
print(json.dumps({{"ms": elapsed, "forbidden": forbidden}}))
"""


def function_names() -> list[str]:
    return sorted(p.parent.name for p in ROOT.glob("*/function.json"))


def measure(name: str) -> tuple[float, list[str]]:
    code = _PROBE.format(name=name, forbidden=FORBIDDEN)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return float(result["ms"]), list(result["forbidden"])


def main(runs: int = 5) -> int:
    worst_overall = 0.0
    problems = []
    print(f"{'function':<28} {'median ms':>10} {'max ms':>8}")
    for name in function_names():
        timings, forbidden = [], []
        for _ in range(runs):
            ms, found = measure(name)
            timings.append(ms)
            forbidden = found or forbidden
        worst = max(timings)
        worst_overall = max(worst_overall, worst)
        print(f"{name:<28} {statistics.median(timings):>10.0f} {worst:>8.0f}")
        if forbidden:
            problems.append(f"{name} imports {', '.join(forbidden)}")
    print(f"slowest import: {worst_overall:.0f} ms (target < {TARGET_MS:.0f} ms)")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems or worst_overall >= TARGET_MS else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    sys.exit(main(parser.parse_args().runs))
