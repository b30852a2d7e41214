"""The post-deploy hook run for real (POSIX sh) against a fake `az` and `azd` that record their
arguments: it stops at once without `az` or a login, runs `az` against azd's subscription, shows
az's own error when it gives up, and refreshes Key Vault references until they resolve."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.infra import bicep

HOOKS = bicep.INFRA / "hooks"
SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
SITE = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-test/providers/Microsoft.Web/sites/func-api"
)
FAKE_AZ = """#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_LOG.az"
case "$1 $2" in
  "account show")
    if [ -n "${FAKE_AZ_LOGGED_OUT:-}" ]; then
      echo "ERROR: Please run 'az login' to setup account." >&2; exit 1
    fi ;;
  "functionapp keys")
    if [ -z "${FAKE_AZ_KEY:-}" ]; then
      echo "ERROR: (AuthorizationFailed) fake keys error" >&2; exit 1
    fi
    echo "$FAKE_AZ_KEY" ;;
  "rest --method")
    case "$*" in
      *"/refresh?"*) ;;
      *) printf '%s' "${FAKE_AZ_UNRESOLVED:-}" ;;
    esac ;;
esac
"""
FAKE_AZD = """#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_LOG.azd"
"""


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A PATH holding only the tools the hook uses besides az and azd."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for tool in ("sh", "mktemp", "cat", "rm", "sleep"):
        found = shutil.which(tool)
        assert found is not None, tool
        (directory / tool).symlink_to(found)
    return directory


def install(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text(script)
    path.chmod(0o755)


def run_hook(
    tmp_path: Path, bin_dir: Path, *, with_az: bool = True, **env: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    if with_az:
        install(bin_dir, "az", FAKE_AZ)
    install(bin_dir, "azd", FAKE_AZD)
    environment = {
        "PATH": str(bin_dir),
        "FAKE_LOG": str(tmp_path / "log"),
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "AZURE_RESOURCE_GROUP": "rg-test",
        "AZURE_FUNCTION_APP_NAME": "func-api",
        "POSTDEPLOY_ATTEMPTS": "2",
        "POSTDEPLOY_INTERVAL": "0",
        **env,
    }
    started = time.monotonic()
    result = subprocess.run(
        [str(bin_dir / "sh"), str(HOOKS / "postdeploy.sh")],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result, time.monotonic() - started


def calls(tmp_path: Path, tool: str) -> list[str]:
    log = tmp_path / f"log.{tool}"
    return log.read_text().splitlines() if log.exists() else []


def with_optimize_media(tmp_path: Path) -> None:
    (tmp_path / "optimize_media").mkdir()
    (tmp_path / "optimize_media" / "function.json").write_text("{}")


def test_without_az_the_hook_stops_at_once_and_says_what_to_install(
    tmp_path: Path, bin_dir: Path
) -> None:
    with_optimize_media(tmp_path)
    result, elapsed = run_hook(tmp_path, bin_dir, with_az=False)
    assert result.returncode != 0
    assert "Azure CLI (az) is not installed" in result.stderr
    assert "az login" in result.stderr
    assert elapsed < 5
    assert calls(tmp_path, "azd") == []


def test_without_a_login_the_hook_shows_az_error_and_asks_for_az_login(
    tmp_path: Path, bin_dir: Path
) -> None:
    with_optimize_media(tmp_path)
    result, _ = run_hook(tmp_path, bin_dir, FAKE_AZ_LOGGED_OUT="1")
    assert result.returncode != 0
    assert "Please run 'az login'" in result.stderr
    assert f"cannot use subscription {SUBSCRIPTION}" in result.stderr
    assert calls(tmp_path, "az") == [f"account show --subscription {SUBSCRIPTION} --output none"]


def test_the_key_wait_uses_azd_subscription_and_shows_az_error_when_it_gives_up(
    tmp_path: Path, bin_dir: Path
) -> None:
    with_optimize_media(tmp_path)
    result, _ = run_hook(tmp_path, bin_dir)
    assert result.returncode != 0
    assert result.stderr.count("(AuthorizationFailed) fake keys error") == 1
    assert "has not created its blobs_extension key after 2 attempts" in result.stderr
    key_lists = [c for c in calls(tmp_path, "az") if c.startswith("functionapp keys list")]
    assert len(key_lists) == 2
    assert all(f"--subscription {SUBSCRIPTION} " in c for c in key_lists)
    assert calls(tmp_path, "azd") == []


def test_first_deploy_creates_the_subscription_then_refreshes_key_vault_references(
    tmp_path: Path, bin_dir: Path
) -> None:
    with_optimize_media(tmp_path)
    result, _ = run_hook(tmp_path, bin_dir, FAKE_AZ_KEY="host-key")
    assert result.returncode == 0, result.stderr
    assert calls(tmp_path, "azd") == [
        "env set BLOB_EVENT_SUBSCRIPTION_ENABLED true",
        "provision --no-prompt",
    ]
    rest = [c for c in calls(tmp_path, "az") if c.startswith("rest ")]
    refresh = f"https://management.azure.com{SITE}/config/configreferences/appsettings/refresh"
    assert rest[0].startswith(f"rest --method post --url {refresh}?api-version=")
    assert rest[1].startswith("rest --method get --url ")
    assert "every Key Vault reference is resolved" in result.stdout


def test_later_deploys_still_refresh_key_vault_references(tmp_path: Path, bin_dir: Path) -> None:
    result, _ = run_hook(tmp_path, bin_dir, BLOB_EVENT_SUBSCRIPTION_ENABLED="true")
    assert result.returncode == 0, result.stderr
    assert calls(tmp_path, "azd") == []
    assert any("/configreferences/appsettings/refresh?" in c for c in calls(tmp_path, "az"))


def test_references_that_stay_unresolved_fail_the_hook_and_are_named(
    tmp_path: Path, bin_dir: Path
) -> None:
    result, _ = run_hook(
        tmp_path,
        bin_dir,
        BLOB_EVENT_SUBSCRIPTION_ENABLED="true",
        FAKE_AZ_UNRESOLVED="CARRIER_WEBHOOK_SECRET\tAccessToKeyVaultDenied\tForbidden",
    )
    assert result.returncode != 0
    assert "CARRIER_WEBHOOK_SECRET\tAccessToKeyVaultDenied" in result.stderr
    refreshes = [c for c in calls(tmp_path, "az") if "/refresh?" in c]
    assert len(refreshes) == 2


def test_windows_hook_makes_the_same_checks() -> None:
    script = (HOOKS / "postdeploy.ps1").read_text()
    assert "Get-Command az" in script
    assert "az account show --subscription $env:AZURE_SUBSCRIPTION_ID" in script
    assert "--subscription $env:AZURE_SUBSCRIPTION_ID" in script.split("functionapp keys list")[1]
    assert "2>$null" not in script
    assert "/config/configreferences/appsettings/refresh" in script


def test_hooks_are_posix_sh_without_bashisms() -> None:
    # azure.yaml runs the hook with `sh`; on Debian and Ubuntu that is dash.
    dash = shutil.which("dash")
    if dash is None:
        pytest.skip("dash is not installed")
    result = subprocess.run(
        [dash, "-n", str(HOOKS / "postdeploy.sh")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert os.access(HOOKS / "postdeploy.sh", os.X_OK)
