"""Tenants, users, the tenants each user may act for, and provisioned phone numbers.

Tenant-owned rows are partitioned by tenant id. One directory row per number (partitioned by the
number) makes ownership unique and lets inbound traffic find the tenant a number belongs to.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import uuid
from dataclasses import dataclass, field

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.clock import now_iso
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.passwords import hash_password
from shared.phone import parse_e164
from shared.storage import Storage

TENANTS, USERS, NUMBERS, TENANT_NUMBERS = "tenants", "users", "numbers", "tenantnumbers"


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    webhook_url: str | None = None
    # Newest first; during a rotation both are used to sign customer webhooks.
    webhook_secrets: tuple[str, ...] = ()
    webhook_disabled: bool = False
    created_at: str = ""


@dataclass(frozen=True)
class User:
    email: str
    password_hash: str
    tenant_ids: frozenset[str] = field(default_factory=frozenset)


_KEY_FORBIDDEN = frozenset("/\\#?")


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    # The email is a Table Storage key, which must not hold / \ # ? or control characters.
    if (
        "@" not in email
        or len(email) > 254
        or any(c.isspace() or c in _KEY_FORBIDDEN or not c.isprintable() for c in email)
    ):
        raise ValidationFailed.field("email", "must be an email address")
    return email


def normalise_tenant_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ValidationFailed.field("tenantId", "must be a GUID") from None


def require_number(value: str) -> str:
    number = parse_e164(value)
    if number is None:
        raise ValidationFailed.field("phoneNumber", "must be an E.164 number such as +15551234567")
    return number


class TenantDirectory:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    # Tenants

    def create_tenant(self, name: str, tenant_id: str | None = None) -> Tenant:
        """Create a tenant; creating one that already exists returns it unchanged."""
        tid = normalise_tenant_id(tenant_id) if tenant_id else str(uuid.uuid4())
        entity = {
            "PartitionKey": tid,
            "RowKey": "tenant",
            "Name": name,
            "WebhookSecrets": json.dumps([new_webhook_secret()]),
            "WebhookDisabled": False,
            "CreatedAt": now_iso(),
        }
        with contextlib.suppress(ResourceExistsError):
            self._storage.table(TENANTS).create_entity(entity)
        tenant = self.get_tenant(tid)
        assert tenant is not None
        return tenant

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        try:
            e = self._storage.table(TENANTS).get_entity(tenant_id, "tenant")
        except ResourceNotFoundError:
            return None
        return _tenant(e)

    def require_tenant(self, tenant_id: str) -> Tenant:
        tenant = self.get_tenant(tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        return tenant

    def list_tenants(self) -> list[Tenant]:
        rows = self._storage.table(TENANTS).query_entities("RowKey eq 'tenant'")
        return sorted((_tenant(e) for e in rows), key=lambda t: t.name)

    def set_webhook(self, tenant_id: str, url: str | None) -> Tenant:
        self.require_tenant(tenant_id)
        self._storage.table(TENANTS).update_entity(
            {"PartitionKey": tenant_id, "RowKey": "tenant", "WebhookUrl": url or "",
             "WebhookDisabled": False}
        )  # fmt: skip
        return self.require_tenant(tenant_id)

    def disable_webhook(self, tenant_id: str) -> None:
        self._storage.table(TENANTS).update_entity(
            {"PartitionKey": tenant_id, "RowKey": "tenant", "WebhookDisabled": True}
        )

    def rotate_webhook_secret(self, tenant_id: str, *, keep_previous: bool = True) -> Tenant:
        """Add a new signing secret; the previous one keeps signing too until dropped."""
        table = self._storage.table(TENANTS)
        e = table.get_entity(tenant_id, "tenant")
        current = json.loads(e.get("WebhookSecrets") or "[]")
        kept = current[:1] if keep_previous else []
        e["WebhookSecrets"] = json.dumps([new_webhook_secret(), *kept])
        table.update_entity(
            e, etag=e.metadata["etag"], match_condition=MatchConditions.IfNotModified
        )
        return self.require_tenant(tenant_id)

    # Users

    def get_user(self, email: str) -> User | None:
        try:
            e = self._storage.table(USERS).get_entity(normalise_email(email), "user")
        except (ResourceNotFoundError, ValidationFailed):
            return None
        return User(e["PartitionKey"], e["PasswordHash"], frozenset(json.loads(e["TenantIds"])))

    def create_user(self, email: str, password: str) -> User:
        email = normalise_email(email)
        _check_password(password)
        entity = {
            "PartitionKey": email,
            "RowKey": "user",
            "PasswordHash": hash_password(password),
            "TenantIds": "[]",
            "CreatedAt": now_iso(),
        }
        try:
            self._storage.table(USERS).create_entity(entity)
        except ResourceExistsError:
            raise Conflict(f"user {email} already exists; use set-password") from None
        user = self.get_user(email)
        assert user is not None
        return user

    def set_password(self, email: str, password: str) -> None:
        _check_password(password)
        self._update_user(email, lambda e: e.update(PasswordHash=hash_password(password)))

    def grant(self, email: str, tenant_id: str) -> User:
        self.require_tenant(tenant_id)
        return self._update_user(email, lambda e: _edit_tenants(e, add=tenant_id))

    def revoke(self, email: str, tenant_id: str) -> User:
        return self._update_user(email, lambda e: _edit_tenants(e, remove=tenant_id))

    def list_users(self) -> list[User]:
        rows = self._storage.table(USERS).query_entities("RowKey eq 'user'")
        users = (User(e["PartitionKey"], "", frozenset(json.loads(e["TenantIds"]))) for e in rows)
        return sorted(users, key=lambda u: u.email)

    def _update_user(self, email: str, edit: object) -> User:
        email = normalise_email(email)
        table = self._storage.table(USERS)
        try:
            e = table.get_entity(email, "user")
        except ResourceNotFoundError:
            raise NotFound(f"user {email} does not exist") from None
        edit(e)  # type: ignore[operator]
        table.update_entity(
            e, etag=e.metadata["etag"], match_condition=MatchConditions.IfNotModified
        )
        user = self.get_user(email)
        assert user is not None
        return user

    # Numbers

    def provision_number(self, tenant_id: str, number: str, carrier: str = "sandbox") -> None:
        """Give `number` to the tenant, sending through `carrier`. Idempotent for the same tenant
        and carrier; 409 if another tenant owns it, or if it already has another carrier (moving
        a number is `set_number_carrier`)."""
        number = require_number(number)
        self.require_tenant(tenant_id)
        directory = self._storage.table(NUMBERS)
        try:
            directory.create_entity(
                {"PartitionKey": number, "RowKey": "owner", "TenantId": tenant_id,
                 "Carrier": carrier}
            )  # fmt: skip
        except ResourceExistsError:
            if self.number_owner(number) != tenant_id:
                raise Conflict(f"{number} is provisioned for another tenant") from None
            current = self.number_carrier(number)
            if current is not None and current != carrier:
                raise Conflict(
                    f"{number} is provisioned with carrier {current}; use number-set-carrier"
                ) from None
        self._storage.table(TENANT_NUMBERS).upsert_entity(
            {"PartitionKey": tenant_id, "RowKey": number, "ProvisionedAt": now_iso(),
             "Carrier": carrier}
        )  # fmt: skip

    def number_carrier(self, number: str) -> str | None:
        """The carrier `number` sends through; None when it is not provisioned or was
        provisioned before numbers had carriers (such a number routes as it always did)."""
        try:
            e = self._storage.table(NUMBERS).get_entity(number, "owner")
        except ResourceNotFoundError:
            return None
        return str(e.get("Carrier") or "") or None

    def set_number_carrier(self, tenant_id: str, number: str, carrier: str) -> None:
        number = require_number(number)
        if self.number_owner(number) != tenant_id:
            raise NotFound(f"{number} is not provisioned for tenant {tenant_id}")
        self._storage.table(NUMBERS).update_entity(
            {"PartitionKey": number, "RowKey": "owner", "Carrier": carrier}
        )
        self._storage.table(TENANT_NUMBERS).upsert_entity(
            {"PartitionKey": tenant_id, "RowKey": number, "Carrier": carrier}
        )

    def tenant_number_carriers(self, tenant_id: str) -> dict[str, str | None]:
        """Each of the tenant's numbers with its carrier (None: provisioned before carriers)."""
        rows = self._storage.table(TENANT_NUMBERS).query_entities(
            "PartitionKey eq @tid", parameters={"tid": tenant_id}
        )
        return {e["RowKey"]: (str(e.get("Carrier") or "") or None) for e in rows}

    def release_number(self, tenant_id: str, number: str) -> None:
        number = require_number(number)
        if self.number_owner(number) != tenant_id:
            raise NotFound(f"{number} is not provisioned for tenant {tenant_id}")
        self._storage.table(TENANT_NUMBERS).delete_entity(tenant_id, number)
        self._storage.table(NUMBERS).delete_entity(number, "owner")

    def number_owner(self, number: str) -> str | None:
        try:
            e = self._storage.table(NUMBERS).get_entity(number, "owner")
        except ResourceNotFoundError:
            return None
        return str(e["TenantId"])

    def tenant_numbers(self, tenant_id: str) -> list[str]:
        rows = self._storage.table(TENANT_NUMBERS).query_entities(
            "PartitionKey eq @tid", parameters={"tid": tenant_id}
        )
        return sorted(e["RowKey"] for e in rows)


def _tenant(e: dict[str, object]) -> Tenant:
    return Tenant(
        id=str(e["PartitionKey"]),
        name=str(e.get("Name", "")),
        webhook_url=str(e.get("WebhookUrl") or "") or None,
        webhook_secrets=tuple(json.loads(str(e.get("WebhookSecrets") or "[]"))),
        webhook_disabled=bool(e.get("WebhookDisabled", False)),
        created_at=str(e.get("CreatedAt", "")),
    )


def _edit_tenants(
    e: dict[str, object], *, add: str | None = None, remove: str | None = None
) -> None:
    ids = set(json.loads(str(e["TenantIds"])))
    if add:
        ids.add(add)
    if remove:
        ids.discard(remove)
    e["TenantIds"] = json.dumps(sorted(ids))


def _check_password(password: str) -> None:
    if len(password) < 8 or len(password) > 1024:
        raise ValidationFailed.field("password", "must be 8 to 1024 characters")
