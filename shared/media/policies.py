"""The media container's stored access policies: every long-lived read URL is signed against one,
and deleting a policy revokes every URL signed against it.

Azure Storage keeps at most five policies on a container, and a policy added or removed can take up
to 30 seconds to take effect. The app only ever adds its configured `SAS_POLICY_ID` (on first use)
and an operator removes old ones (admin CLI): nothing is removed automatically, because which
issued URLs to revoke is the operator's choice. When the configured policy would be a sixth, the
app refuses to sign rather than fail at the service. Both writers replace the whole list only if
the container has not changed since they read it (Last-Modified, one-second resolution), so an add
racing a delete does not bring the deleted policy back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from azure.storage.blob import AccessPolicy, ContainerClient

from shared.errors import Conflict, NotConfigured, NotFound, StorageUnavailable
from shared.storage import storage_errors

MAX_POLICIES = 5
_TRIES = 3

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredPolicy:
    policy_id: str
    permission: str | None
    start: datetime | str | None
    expiry: datetime | str | None


def list_policies(container: ContainerClient) -> list[StoredPolicy]:
    policies, _ = _read(container)
    return [
        StoredPolicy(pid, str(p.permission or "") or None, p.start, p.expiry)
        if p is not None
        else StoredPolicy(pid, None, None, None)
        for pid, p in sorted(policies.items())
    ]


def add_policy(container: ContainerClient, policy_id: str) -> None:
    """Make sure `policy_id` exists as a read-only policy; refuse (503 `sas_policy_limit`) when
    the container already holds the most Azure allows and it is not one of them."""
    for _ in range(_TRIES):
        policies, stamp = _read(container)
        if policy_id in policies:
            return
        if len(policies) >= MAX_POLICIES:
            log.error(
                "configuration error: SAS_POLICY_ID %r would be a stored access policy beyond "
                "the %d that container %r holds (%s); delete one you no longer need with "
                "`python -m shared.admin sas-policy-delete NAME` (this revokes its URLs)",
                policy_id, MAX_POLICIES, container.container_name, ", ".join(sorted(policies)),
            )  # fmt: skip
            raise NotConfigured(
                f"Media URLs cannot be signed: the storage container already holds the "
                f"{MAX_POLICIES} access policies it allows; an operator must remove one.",
                code="sas_policy_limit",
            )
        # Permission lives in the policy, expiry in each URL: each URL gets its own 99 years.
        policies[policy_id] = AccessPolicy(permission="r")
        if _write(container, policies, stamp):
            return
    raise StorageUnavailable()


def delete_policy(container: ContainerClient, policy_id: str, *, configured: str) -> None:
    """Remove a policy, revoking every URL signed against it; never the configured one, which
    the app would only add again (and its new URLs would stop working meanwhile)."""
    if policy_id == configured:
        raise Conflict(
            f"{policy_id!r} is the configured SAS_POLICY_ID: set a new SAS_POLICY_ID, let the "
            "app restart, then delete this one.",
            code="sas_policy_in_use",
        )
    for _ in range(_TRIES):
        policies, stamp = _read(container)
        if policies.pop(policy_id, None) is None:
            raise NotFound(f"No stored access policy {policy_id!r}.", code="sas_policy_not_found")
        if _write(container, policies, stamp):
            return
    raise StorageUnavailable()


def _read(container: ContainerClient) -> tuple[dict[str, AccessPolicy], datetime | None]:
    seen: list[str | None] = []

    def keep_last_modified(response: Any) -> None:
        seen.append(response.http_response.headers.get("Last-Modified"))

    with storage_errors():
        acl = container.get_container_access_policy(raw_response_hook=keep_last_modified)
    modified = seen[-1] if seen else None
    policies = {p.id: p.access_policy for p in acl["signed_identifiers"]}
    return policies, parsedate_to_datetime(modified) if modified else None


def _write(
    container: ContainerClient, policies: dict[str, AccessPolicy], stamp: datetime | None
) -> bool:
    """False when the container changed since it was read (a lost race: read again)."""
    try:
        with storage_errors():
            container.set_container_access_policy(policies, if_unmodified_since=stamp)
    except Conflict:  # AlreadyExists or ChangedMeanwhile
        return False
    return True
