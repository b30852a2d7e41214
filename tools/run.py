"""`make run`: start Azurite (data under .azurite/), seed the demo account, serve the API on :7071.

Uses `func start` where Azure Functions Core Tools are installed, else the project's local host.
Ctrl-C stops everything this started.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

from tools import azurite
from tools.azurite import ROOT


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # Ctrl-C reaches the whole process group; a plain `kill` reaches only us: stop children too.
    signal.signal(signal.SIGTERM, _interrupt)
    settings_file = ROOT / "local.settings.json"
    if not settings_file.exists():
        shutil.copy(ROOT / "local.settings.json.example", settings_file)
        print("created local.settings.json from the example")
    data = ROOT / ".azurite"
    print("starting Azurite on 127.0.0.1:10000-10002 (data in .azurite/)")
    store = azurite.start(ports=azurite.DEFAULT_PORTS, location=data, log=data / "azurite.log")
    server: subprocess.Popen[bytes] | None = None
    try:
        env = {**os.environ, "MEDIA_STORAGE_CONNECTION_STRING": store.connection_string}
        subprocess.run(
            [sys.executable, "-m", "shared.admin", "seed-demo"], cwd=ROOT, env=env, check=True
        )
        func = shutil.which("func")
        command = (
            [func, "start", "--port", "7071"]
            if func
            else [sys.executable, "-m", "tools.localhost", "--port", "7071"]
        )
        runner = "func" if func else "tools.localhost"
        print(f"serving the API on http://localhost:7071/api with {runner}")
        server = subprocess.Popen(command, cwd=ROOT, env=env)
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        store.stop()
        print("stopped")


if __name__ == "__main__":
    sys.exit(main())
