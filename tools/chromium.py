"""Headless Chromium and its WebDriver for the browser test (`tests/e2e/test_api_docs_browser.py`),
from Debian's packages `chromium` and `chromium-driver`.

`python -m tools.chromium` (run by `make test`) installs them with apt-get when they are missing
and we are root, as on CI; otherwise it says how to install them and leaves the test to skip
locally (or fail under CI=true). Development only (excluded from deployment by .funcignore).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

PACKAGES = ("chromium", "chromium-driver")
INSTALL_HINT = "install it as root: apt-get update && apt-get install -y chromium chromium-driver"


@dataclass(frozen=True)
class Chromium:
    browser: str
    driver: str


def find() -> Chromium | None:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return Chromium(browser, driver) if browser and driver else None


def install(apt_get: str) -> None:
    """Non-interactive: CI has no standard input."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([apt_get, "update", "-qq"], check=True, env=env, stdin=subprocess.DEVNULL)
    subprocess.run(
        [apt_get, "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
        check=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def main() -> int:
    if find():
        return 0
    on_ci = os.environ.get("CI", "").lower() == "true"
    apt_get = shutil.which("apt-get")
    if os.geteuid() != 0 or apt_get is None:
        print(f"chromium: missing (the browser test skips, or fails on CI); {INSTALL_HINT}")
        return 1 if on_ci else 0
    print("chromium: installing Debian's chromium and chromium-driver for the browser test")
    try:
        install(apt_get)
    except subprocess.CalledProcessError as exc:
        print(f"chromium: apt-get failed ({exc})", file=sys.stderr)
        return 1 if on_ci else 0
    return 0 if find() else 1


if __name__ == "__main__":
    sys.exit(main())
