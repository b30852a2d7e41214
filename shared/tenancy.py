"""Tenants, users, the tenants each user may act for, and provisioned phone numbers.

Tenant-owned rows are partitioned by tenant id. One directory row per number (partitioned by the
number) makes ownership unique and lets inbound traffic find the tenant a number belongs to.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import Field

from shared.clock import now_iso
from shared.errors import AlreadyExists, ChangedMeanwhile, Conflict, NotFound, ValidationFailed
from shared.passwords import hash_password
from shared.phone import parse_e164
from shared.storage import Storage
from shared.tables import JsonText, Row, Table, retry_on_change

TENANTS, USERS, NUMBERS, TENANT_NUMBERS = "tenants", "users", "numbers", "tenantnumbers"
_TENANT_ROW, _USER_ROW, _OWNER_ROW = "tenant", "user", "owner"


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


class TenantRow(Row):
    """Partition: the tenant id; row: `tenant`. A cleared webhook URL is stored as ''."""

    name: str = ""
    webhook_url: str | None = None
    webhook_secrets: JsonText[list[str]] = Field(default_factory=list)
    webhook_disabled: bool = False
    created_at: str = ""

    def tenant(self) -> Tenant:
        return Tenant(
            id=self.partition_key,
            name=self.name,
            webhook_url=self.webhook_url or None,
            webhook_secrets=tuple(self.webhook_secrets),
            webhook_disabled=self.webhook_disabled,
            created_at=self.created_at,
        )


class UserRow(Row):
    """Partition: the normalised email; row: `user`."""

    password_hash: str
    tenant_ids: JsonText[list[str]] = Field(default_factory=list)
    created_at: str | None = None

    def user(self, *, with_hash: bool = True) -> User:
        hashed = self.password_hash if with_hash else ""
        return User(self.partition_key, hashed, frozenset(self.tenant_ids))


class NumberOwnerRow(Row):
    """Partition: the number; row: `owner`. One per number, so ownership is unique. `carrier`
    None: provisioned before numbers had carriers."""

    tenant_id: str
    carrier: str | None = None


class TenantNumberRow(Row):
    """Partition: the tenant id; row: the number."""

    provisioned_at: str | None = None
    carrier: str | None = None


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
    """The tenants, users, numbers and tenant-numbers tables. Read-modify-writes are conditional
    on the version read and are done again when another writer got in first (`retry_on_change`);
    one that keeps losing answers `ChangedMeanwhile` (409)."""

    def __init__(self, storage: Storage) -> None:
        self._tenants = Table.of(storage, TENANTS, TenantRow)
        self._users = Table.of(storage, USERS, UserRow)
        self._numbers = Table.of(storage, NUMBERS, NumberOwnerRow)
        self._tenant_numbers = Table.of(storage, TENANT_NUMBERS, TenantNumberRow)

    # Tenants

    def create_tenant(self, name: str, tenant_id: str | None = None) -> Tenant:
        """Create a tenant; creating one that already exists returns it unchanged."""
        tid = normalise_tenant_id(tenant_id) if tenant_id else str(uuid.uuid4())
        row = TenantRow(
            partition_key=tid,
            row_key=_TENANT_ROW,
            name=name,
            webhook_secrets=[new_webhook_secret()],
            created_at=now_iso(),
        )
        try:
            return self._tenants.insert(row).tenant()
        except AlreadyExists:
            return self.require_tenant(tid)

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        row = self._tenants.get(tenant_id, _TENANT_ROW)
        return row.tenant() if row else None

    def require_tenant(self, tenant_id: str) -> Tenant:
        return self._tenant_row(tenant_id).tenant()

    def _tenant_row(self, tenant_id: str) -> TenantRow:
        row = self._tenants.get(tenant_id, _TENANT_ROW)
        if row is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        return row

    def list_tenants(self) -> list[Tenant]:
        rows = self._tenants.query("RowKey eq @row", {"row": _TENANT_ROW})
        return sorted((row.tenant() for row in rows), key=lambda t: t.name)

    def set_webhook(self, tenant_id: str, url: str | None) -> Tenant:
        return self._edit_tenant(
            tenant_id, lambda row: row.changed(webhook_url=url or "", webhook_disabled=False)
        )

    def disable_webhook(self, tenant_id: str) -> None:
        self._edit_tenant(tenant_id, lambda row: row.changed(webhook_disabled=True))

    def rotate_webhook_secret(self, tenant_id: str, *, keep_previous: bool = True) -> Tenant:
        """Add a new signing secret; the previous one keeps signing too until dropped."""

        def rotate(row: TenantRow) -> TenantRow:
            kept = row.webhook_secrets[:1] if keep_previous else []
            return row.changed(webhook_secrets=[new_webhook_secret(), *kept])

        return self._edit_tenant(tenant_id, rotate)

    def _edit_tenant(self, tenant_id: str, edit: Callable[[TenantRow], TenantRow]) -> Tenant:
        return retry_on_change(
            lambda: self._tenants.update(edit(self._tenant_row(tenant_id)))
        ).tenant()

    # Users

    def get_user(self, email: str) -> User | None:
        try:
            row = self._users.get(normalise_email(email), _USER_ROW)
        except ValidationFailed:
            return None
        return row.user() if row else None

    def create_user(self, email: str, password: str) -> User:
        email = normalise_email(email)
        _check_password(password)
        row = UserRow(
            partition_key=email,
            row_key=_USER_ROW,
            password_hash=hash_password(password),
            created_at=now_iso(),
        )
        try:
            return self._users.insert(row).user()
        except AlreadyExists:
            raise Conflict(f"user {email} already exists; use set-password") from None

    def set_password(self, email: str, password: str) -> None:
        _check_password(password)
        hashed = hash_password(password)
        self._edit_user(email, lambda row: row.changed(password_hash=hashed))

    def grant(self, email: str, tenant_id: str) -> User:
        self.require_tenant(tenant_id)
        return self._edit_user(email, lambda row: _with_tenants(row, add=tenant_id))

    def revoke(self, email: str, tenant_id: str) -> User:
        return self._edit_user(email, lambda row: _with_tenants(row, remove=tenant_id))

    def list_users(self) -> list[User]:
        rows = self._users.query("RowKey eq @row", {"row": _USER_ROW})
        return sorted((row.user(with_hash=False) for row in rows), key=lambda u: u.email)

    def _edit_user(self, email: str, edit: Callable[[UserRow], UserRow]) -> User:
        email = normalise_email(email)

        def attempt() -> UserRow:
            row = self._users.get(email, _USER_ROW)
            if row is None:
                raise NotFound(f"user {email} does not exist")
            return self._users.update(edit(row))

        return retry_on_change(attempt).user()

    # Numbers

    def provision_number(self, tenant_id: str, number: str, carrier: str = "sandbox") -> None:
        """Give `number` to the tenant, sending through `carrier`. Idempotent for the same tenant
        and carrier; 409 if another tenant owns it, or if it already has another carrier (moving
        a number is `set_number_carrier`)."""
        number = require_number(number)
        self.require_tenant(tenant_id)
        owner = NumberOwnerRow(
            partition_key=number, row_key=_OWNER_ROW, tenant_id=tenant_id, carrier=carrier
        )

        def claim() -> None:
            try:
                self._numbers.insert(owner)
                return
            except AlreadyExists:
                current = self._numbers.get(number, _OWNER_ROW)
            if current is None:
                raise ChangedMeanwhile()  # released meanwhile: claim it again
            if current.tenant_id != tenant_id:
                raise Conflict(f"{number} is provisioned for another tenant")
            if current.carrier and current.carrier != carrier:
                raise Conflict(
                    f"{number} is provisioned with carrier {current.carrier}; "
                    "use number-set-carrier"
                )

        retry_on_change(claim)
        self._tenant_numbers.upsert(
            TenantNumberRow(
                partition_key=tenant_id, row_key=number, provisioned_at=now_iso(), carrier=carrier
            ),
            merge=True,
        )

    def number_carrier(self, number: str) -> str | None:
        """The carrier `number` sends through; None when it is not provisioned or was
        provisioned before numbers had carriers (such a number routes as it always did)."""
        row = self._numbers.get(number, _OWNER_ROW)
        return (row.carrier or None) if row else None

    def set_number_carrier(self, tenant_id: str, number: str, carrier: str) -> None:
        number = require_number(number)

        def move() -> None:
            row = self._owned(tenant_id, number)
            self._numbers.update(row.changed(carrier=carrier))

        retry_on_change(move)
        self._tenant_numbers.upsert(
            TenantNumberRow(partition_key=tenant_id, row_key=number, carrier=carrier), merge=True
        )

    def tenant_number_carriers(self, tenant_id: str) -> dict[str, str | None]:
        """Each of the tenant's numbers with its carrier (None: provisioned before carriers)."""
        rows = self._tenant_numbers.partition(tenant_id)
        return {row.row_key: row.carrier or None for row in rows}

    def release_number(self, tenant_id: str, number: str) -> None:
        number = require_number(number)
        owner = self._owned(tenant_id, number)
        self._tenant_numbers.delete(tenant_id, number)
        self._numbers.delete(number, _OWNER_ROW, etag=owner.etag)

    def _owned(self, tenant_id: str, number: str) -> NumberOwnerRow:
        row = self._numbers.get(number, _OWNER_ROW)
        if row is None or row.tenant_id != tenant_id:
            raise NotFound(f"{number} is not provisioned for tenant {tenant_id}")
        return row

    def number_owner(self, number: str) -> str | None:
        row = self._numbers.get(number, _OWNER_ROW)
        return row.tenant_id if row else None

    def tenant_numbers(self, tenant_id: str) -> list[str]:
        return sorted(row.row_key for row in self._tenant_numbers.partition(tenant_id))


def _with_tenants(row: UserRow, *, add: str | None = None, remove: str | None = None) -> UserRow:
    ids = set(row.tenant_ids)
    if add:
        ids.add(add)
    if remove:
        ids.discard(remove)
    return row.changed(tenant_ids=sorted(ids))


def _check_password(password: str) -> None:
    if len(password) < 8 or len(password) > 1024:
        raise ValidationFailed.field("password", "must be 8 to 1024 characters")
