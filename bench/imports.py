"""Cold start: importing each function module with production dependencies only, next to its
floor, importing `azure.functions` plus the storage SDKs that function needs, in the same run.

Run: `.venv/bin/python -m bench.imports [--python PATH] [--runs N]`. Without `--python` it builds
`bench/out/prod-venv` from `requirements.txt` once (the development venv holds more packages,
some of which the SDKs import when present, e.g. aiohttp). Each measurement is a fresh
interpreter timing one `import` statement (interpreter start-up excluded); runs alternate
between the function and its floor, and the median is reported. A second table adds building
the application's long-lived objects on the first call (`shared.app.current()`, no network I/O),
the rest of a cold start that the import alone does not show.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROD_VENV = ROOT / "bench" / "out" / "prod-venv"
TARGET = 1.3
BLOB, TABLES, QUEUES = "azure.storage.blob", "azure.data.tables", "azure.storage.queue"
# Every function that builds the app reaches storage through `shared.storage.Storage`, whose
# blob, table and queue clients each of these calls: the floor counts the three SDKs. The two
# that serve files from the package need none.
NO_STORAGE = {"api_docs", "openapi_document"}
# Settings the first call reads: the local emulator (no network I/O while building).
EMULATOR = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)
_TIMED = """
import sys, time
sys.path.insert(0, {root!r})
start = time.perf_counter()
{statement}
print(time.perf_counter() - start)
"""


def production_python() -> Path:
    python = PROD_VENV / "bin" / "python"
    if not python.exists():
        print(f"building {PROD_VENV} from requirements.txt (once)...", file=sys.stderr)
        venv.create(PROD_VENV, with_pip=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(ROOT / "requirements.txt")],
            check=True,
        )
    return python


def functions() -> list[str]:
    return sorted(p.parent.name for p in ROOT.glob("*/function.json"))


def floor_statement(name: str) -> str:
    sdks = [] if name in NO_STORAGE else [BLOB, TABLES, QUEUES]
    return "import " + ", ".join(["azure.functions", *sdks])


def seconds(python: Path, statement: str) -> float:
    code = _TIMED.format(root=str(ROOT), statement=statement)
    env = {"MEDIA_STORAGE_CONNECTION_STRING": EMULATOR, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [str(python), "-c", code], check=True, capture_output=True, text=True, env=env, cwd=ROOT
    )
    return float(out.stdout.strip().splitlines()[-1])


def compare(python: Path, statement: str, floor: str, runs: int) -> tuple[float, float]:
    ours, bottom = [], []
    for _ in range(runs):
        ours.append(seconds(python, statement))
        bottom.append(seconds(python, floor))
    return statistics.median(ours) * 1000, statistics.median(bottom) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--python", type=Path, default=None, help="a production-only venv's python")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--only", nargs="*", default=None, help="function folders to measure")
    args = parser.parse_args()
    python = args.python or production_python()
    names = args.only or functions()

    print(f"\nImporting each function module vs azure.functions + its storage SDKs "
          f"({python}), median of {args.runs} fresh interpreters; target <= {TARGET}x")  # fmt: skip
    print(f"{'function':<20} {'import ms':>10} {'floor ms':>9} {'ratio':>6}  met")
    worst = 0.0
    for name in names:
        ours, bottom = compare(python, f"import {name}", floor_statement(name), args.runs)
        ratio = ours / bottom
        worst = max(worst, ratio)
        print(f"{name:<20} {ours:>10.1f} {bottom:>9.1f} {ratio:>6.2f}  {ratio <= TARGET}")
    print(f"worst ratio {worst:.2f} (target {TARGET})")

    print("\nThe rest of a cold start: import plus building the app on the first call")
    print(f"{'function':<20} {'import+app ms':>14} {'floor ms':>9} {'ratio':>6}")
    for name in [n for n in ("upload_media", "media_item", "send_message") if n in names]:
        statement = f"import {name}\nimport shared.app\nshared.app.current()"
        ours, bottom = compare(python, statement, floor_statement(name), args.runs)
        print(f"{name:<20} {ours:>14.1f} {bottom:>9.1f} {ours / bottom:>6.2f}")


if __name__ == "__main__":
    main()
