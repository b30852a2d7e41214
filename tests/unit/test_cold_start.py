"""No function module imports a provider SDK: importing every function, in a fresh interpreter,
leaves twilio (even its request validator), telnyx, bandwidth and nacl unloaded. The import
times themselves are measured by `bench/cold_start.py` (docs/carriers.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Top-level modules of the provider SDKs (the app verifies and sends on its own).
FORBIDDEN = ("twilio", "telnyx", "bandwidth", "nacl")


def function_names() -> list[str]:
    return sorted(path.parent.name for path in ROOT.glob("*/function.json"))


def test_importing_every_function_loads_no_provider_sdk() -> None:
    names = function_names()
    assert {"carrier_twilio_inbound", "carrier_telnyx_events", "carrier_bandwidth_status"} <= set(
        names
    )
    code = (
        "import importlib, json, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []
