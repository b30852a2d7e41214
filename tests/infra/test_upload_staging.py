"""The staging container of upload sessions: created private beside the media containers, swept
by a lifecycle rule, and reached by the app's identity alone (clients hold only a SAS)."""

from __future__ import annotations

from typing import Any

from tests.infra import bicep
from tests.infra.test_bicep_rbac import BLOB_DATA_OWNER, grants, rbac


def storage() -> bicep.Template:
    return bicep.load(bicep.INFRA / "app" / "storage-media.bicep")


def main() -> bicep.Template:
    return bicep.load(bicep.INFRA / "main.bicep")


def media_storage_params() -> dict[str, Any]:
    params: dict[str, Any] = main().modules["mediaStorage"][1]["params"]
    return params


def test_the_staging_container_is_created_private_with_the_others() -> None:
    assert "uploads" in main().params["mediaContainers"].default
    assert "uploads" in storage().params["containerNames"].default
    assert media_storage_params()["stagingContainerName"] == "uploads"
    containers = storage().resource("containers")
    assert containers.properties == {"publicAccess": "None"}
    assert storage().resource("storage").properties["allowBlobPublicAccess"] is False


def test_the_session_table_is_created() -> None:
    assert "uploadsessions" in main().params["mediaTables"].default
    assert "uploadsessions" in storage().params["tableNames"].default


def test_a_lifecycle_rule_deletes_whatever_stays_in_staging_after_a_day() -> None:
    rules = storage().resource("lifecycle").properties["policy"]["rules"]
    [rule] = [r for r in rules if r["name"] == "expire-staged-uploads"]
    assert rule["enabled"] is True and rule["type"] == "Lifecycle"
    assert rule["definition"]["filters"]["prefixMatch"] == ["${stagingContainerName}/"]
    actions = rule["definition"]["actions"]
    retention = bicep.Expr("stagingRetentionDays")
    for kind in ("baseBlob", "snapshot", "version"):
        assert actions[kind]["delete"]["daysAfterCreationGreaterThan"] == retention
    assert storage().params["stagingRetentionDays"].default == 1
    # The other rules never reach into staging, and the staging rule into nothing else.
    others = [r for r in rules if r is not rule]
    assert all("prefixMatch" not in r["definition"]["filters"] for r in others)


def test_the_identity_reads_and_deletes_staging_blobs_and_no_one_else_is_granted_more() -> None:
    """receive_upload reads and deletes staged files, and the app signs their URLs with the key
    it already holds: Blob Data Owner on the media account covers the staging container. Only
    the identity and the operator are granted anything on the account; clients hold a SAS."""
    held = grants(rbac())
    media = "Microsoft.Storage/storageAccounts:mediaStorage"
    assert ("identityPrincipalId", media, BLOB_DATA_OWNER) in held
    assert {principal for principal, scope, _ in held if scope == media} == {
        "identityPrincipalId", "userPrincipalId"
    }  # fmt: skip
