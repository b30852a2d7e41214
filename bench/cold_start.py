"""Cold start of each function: Python 3.11 calling `main` directly (the stack before issue 16)
next to Python 3.13 with Microsoft's worker (`azure-functions-runtime-v1`) loading and invoking
it, side by side in one run.

Run with `python -m bench.cold_start --py311 PATH` (PATH: a Python 3.11 whose environment has
requirements.txt installed with azure-functions 1.x). Every measurement is a fresh interpreter
per function and stack, against one in-memory Azurite; the same function code runs on both.
Not a test: it prints a table and never fails.

- import: 3.11 imports the function folder's module; 3.13 starts the worker (WorkerInitRequest)
  and loads the folder through it (FunctionLoadRequest), which imports the same module.
- first call: the first invocation, App construction from the environment included (3.11 with
  `azure.functions` objects built by hand, 3.13 with an InvocationRequest).
- process: wall time from spawning the interpreter to its answer, interpreter start included.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# One cheap, realistic first request per function: no credentials, so HTTP answers come from the
# error boundary after settings, storage clients and the handler's imports are all in place.
HTTP_CALLS: dict[str, tuple[str, str, bytes]] = {
    "health": ("GET", "/api/health", b""),
    "openapi_document": ("GET", "/api/openapi.yaml", b""),
    "upload_media": ("POST", "/api/v1/media", b"{}"),
    "media_item": ("GET", "/api/v1/media/00000000-0000-0000-0000-000000000000", b""),
    "send_message": ("POST", "/api/v1/messages", b"{}"),
    "get_message": ("GET", "/api/v1/messages/00000000-0000-0000-0000-000000000000", b""),
    "inbound_webhook": ("POST", "/api/v1/webhooks/inbound", b"{}"),
    "carrier_status": ("POST", "/api/v1/webhooks/carrier-status", b"{}"),
}
QUEUE_BODY = '{"tenantId": "bench", "messageId": "none"}'


def _trigger(name: str) -> dict[str, Any]:
    config = json.loads((ROOT / name / "function.json").read_text())
    return next(b for b in config["bindings"] if b["type"].endswith("Trigger"))


def child_311(name: str) -> dict[str, float | str]:
    """Today's stack: import the folder and call `main` with hand-built binding objects."""
    import importlib.util
    import uuid

    started = time.perf_counter()
    import azure.functions as func

    spec = importlib.util.spec_from_file_location(
        name, ROOT / name / "__init__.py", submodule_search_locations=[str(ROOT / name)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    imported = time.perf_counter()

    class Context(func.Context):
        invocation_id = str(uuid.uuid4())
        function_name = name
        function_directory = str(ROOT / name)
        trace_context = retry_context = thread_local_storage = None

    trigger = _trigger(name)["type"]
    value: Any
    if trigger == "httpTrigger":
        method, path, body = HTTP_CALLS[name]
        url = f"http://localhost:7071{path}"
        value = func.HttpRequest(method=method, url=url, headers={}, params={}, body=body)
    elif trigger == "queueTrigger":
        value = func.queue.QueueMessage(id="m1", body=QUEUE_BODY.encode(), dequeue_count=1)
    elif trigger == "blobTrigger":
        value = func.blob.InputStream(data=b"x", name="bench/none.txt", uri="http://x/none.txt")
    else:
        value = func.timer.TimerRequest(past_due=False)
    outcome = "ok"
    try:
        module.main(value, Context())
    except Exception as exc:  # noqa: BLE001 - a failing first call still measures the cold path
        outcome = type(exc).__name__
    return _timings(started, imported, outcome)


def child_313(name: str) -> dict[str, float | str]:
    """With the runtime: WorkerInitRequest, FunctionLoadRequest, InvocationRequest."""
    started = time.perf_counter()
    from tools.functions_worker import FunctionFailed, worker

    config = json.loads((ROOT / name / "function.json").read_text())
    function = worker(ROOT).load(ROOT / name, config)
    imported = time.perf_counter()
    trigger = function.trigger["type"]
    outcome = "ok"
    try:
        if trigger == "httpTrigger":
            method, path, body = HTTP_CALLS[name]
            url = f"http://localhost:7071{path}"
            worker().invoke_http(function, method, url, {}, body, {})
        elif trigger == "queueTrigger":
            worker().invoke_queue(
                function, QUEUE_BODY, message_id="m1", dequeue_count=1, insertion_time=None,
                expiration_time=None, next_visible_time=None, pop_receipt=None,
            )  # fmt: skip
        elif trigger == "blobTrigger":
            worker().invoke_blob(
                function, "bench/none.txt", b"x", uri="http://x/none.txt", properties={},
                metadata={},
            )  # fmt: skip
        else:
            due = datetime.now(UTC) + timedelta(minutes=15)
            worker().invoke_timer(function, past_due=False, last=None, next_due=due)
    except FunctionFailed as exc:
        outcome = exc.message.split(":")[0]
    return _timings(started, imported, outcome)


def _timings(started: float, imported: float, outcome: str) -> dict[str, float | str]:
    return {
        "import_ms": (imported - started) * 1000,
        "call_ms": (time.perf_counter() - imported) * 1000,
        "outcome": outcome,
    }


def measure(python: str, stack: str, name: str, env: dict[str, str]) -> dict[str, Any]:
    began = time.perf_counter()
    done = subprocess.run(
        [python, "-m", "bench.cold_start", "--child", stack, name],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_ms"] = (time.perf_counter() - began) * 1000
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--py311", help="a Python 3.11 with requirements.txt installed")
    parser.add_argument("--py313", default=sys.executable)
    parser.add_argument("--repeat", type=int, default=3, help="runs per function and stack")
    parser.add_argument("--child", nargs=2, metavar=("STACK", "FUNCTION"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        stack, name = args.child
        result = child_311(name) if stack == "3.11" else child_313(name)
        print(json.dumps(result))
        return 0
    if not args.py311:
        parser.error("--py311 is required (e.g. /path/to/a/3.11/venv/bin/python)")

    from tools import azurite

    emulator = azurite.start()
    names = sorted(p.parent.name for p in ROOT.glob("*/function.json"))
    stacks = {"3.11": args.py311, "3.13": args.py313}
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    # Bytecode as a deployed app has it (compiled once), kept out of both environments.
    with tempfile.TemporaryDirectory() as pycache:
        env = {
            **os.environ,
            "MEDIA_STORAGE_CONNECTION_STRING": emulator.connection_string,
            "PYTHONPYCACHEPREFIX": pycache,
        }
        try:
            for run in range(args.repeat + 1):  # the first pass only compiles
                for name in names:
                    for stack, python in stacks.items():
                        result = measure(python, stack, name, env)
                        if run:
                            rows.setdefault((name, stack), []).append(result)
        finally:
            emulator.stop()

    def median(name: str, stack: str, key: str) -> float:
        return statistics.median(r[key] for r in rows[(name, stack)])

    print(f"cold start, median of {args.repeat} fresh interpreters (ms)")
    header = f"{'function':<18} {'trigger':<8}"
    for label in ("import", "first call", "process"):
        header += f" {label + ' 3.11':>16} {label + ' 3.13':>16}"
    print(header + "  outcome 3.11 / 3.13")
    totals: dict[tuple[str, str], list[float]] = {}
    for name in names:
        trigger = _trigger(name)["type"].removesuffix("Trigger")
        line = f"{name:<18} {trigger:<8}"
        for key in ("import_ms", "call_ms", "process_ms"):
            for stack in stacks:
                value = median(name, stack, key)
                totals.setdefault((key, stack), []).append(value)
                line += f" {value:>16.0f}"
        outcomes = " / ".join(rows[(name, stack)][-1]["outcome"] for stack in stacks)
        print(f"{line}  {outcomes}")
    line = f"{'median':<18} {'':<8}"
    for key in ("import_ms", "call_ms", "process_ms"):
        for stack in stacks:
            line += f" {statistics.median(totals[(key, stack)]):>16.0f}"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
