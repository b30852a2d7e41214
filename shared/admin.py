"""Operator CLI: tenants, users, grants, numbers, webhooks and the media URLs' stored access
policies, against whatever storage the settings name. Run `python -m shared.admin --help`.

Passwords are read from --password-stdin or the ADMIN_PASSWORD variable, never from argv
where other users of the machine could see them in the process list.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shared.app import App
from shared.carriers.common import CARRIERS, require_carrier_name, require_configured
from shared.errors import ConfigurationError, ServiceError
from shared.media.policies import MAX_POLICIES
from shared.settings import load_settings

DEMO_TENANT = "00000000-0000-0000-0000-000000000000"
DEMO_EMAIL = "your-email@example.com"
DEMO_PASSWORD = "your-password"  # noqa: S105 - the guide's public placeholder, emulator only
DEMO_NUMBER = "+15551234567"


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    value = os.environ.get("ADMIN_PASSWORD")
    if not value:
        raise SystemExit("give the password on stdin (--password-stdin) or in ADMIN_PASSWORD")
    return value


def seed_demo(app: App) -> dict[str, Any]:
    """The guide's placeholder account, so its examples run unchanged. Emulator storage only."""
    if not app.storage.is_emulator:
        raise SystemExit("refusing to seed the demo account: storage is not the local emulator")
    d = app.directory
    d.create_tenant("Demo tenant", DEMO_TENANT)
    if d.get_user(DEMO_EMAIL) is None:
        d.create_user(DEMO_EMAIL, DEMO_PASSWORD)
    d.grant(DEMO_EMAIL, DEMO_TENANT)
    d.provision_number(DEMO_TENANT, DEMO_NUMBER)
    return {"tenantId": DEMO_TENANT, "email": DEMO_EMAIL, "number": DEMO_NUMBER}


def _tenant_view(app: App, tenant_id: str) -> dict[str, Any]:
    t = app.directory.require_tenant(tenant_id)
    return {
        "tenantId": t.id,
        "name": t.name,
        "webhookUrl": t.webhook_url,
        "webhookDisabled": t.webhook_disabled,
        "webhookSecrets": list(t.webhook_secrets),
        "numbers": app.directory.tenant_numbers(t.id),
        # Numbers provisioned before carriers existed show the carrier they route to today.
        "carriers": {
            number: carrier or app.carriers.carrier_of(number)
            for number, carrier in sorted(app.directory.tenant_number_carriers(t.id).items())
        },
    }


def _set_password(app: App, a: argparse.Namespace) -> dict[str, Any]:
    app.directory.set_password(a.email, _password(a))
    return {"email": a.email}


def _carrier(app: App, name: str | None) -> str:
    """The named carrier (default: DEFAULT_CARRIER), refused unless its settings are there."""
    carrier = require_carrier_name(name or app.settings.default_carrier)
    require_configured(app.settings, carrier)
    return carrier


def _provision(app: App, a: argparse.Namespace) -> dict[str, Any]:
    app.directory.provision_number(a.tenant, a.number, _carrier(app, a.carrier))
    return _tenant_view(app, a.tenant)


def _set_carrier(app: App, a: argparse.Namespace) -> dict[str, Any]:
    app.directory.set_number_carrier(a.tenant, a.number, _carrier(app, a.carrier))
    return _tenant_view(app, a.tenant)


def _release(app: App, a: argparse.Namespace) -> dict[str, Any]:
    app.directory.release_number(a.tenant, a.number)
    return _tenant_view(app, a.tenant)


def _dead_letters(app: App, a: argparse.Namespace) -> list[dict[str, Any]]:
    return app.webhooks.dead_letters.listed(a.tenant)


def _redeliver(app: App, a: argparse.Namespace) -> dict[str, Any]:
    return app.webhooks.redeliver(a.webhook_id, a.tenant)


def _policies(app: App) -> dict[str, Any]:
    """The media container's stored access policies and how many media records were signed
    under each; records from before records kept their policy are counted as unknown."""
    configured = app.settings.sas_policy_id
    uses = app.media.media_per_policy()
    policies = app.media.read_policies()
    present = {p.policy_id for p in policies}
    return {
        "container": app.media.container_name,
        "configuredPolicy": configured,
        "limit": MAX_POLICIES,
        "policies": [
            {"id": p.policy_id, "permission": p.permission, "configured": p.policy_id == configured,
             "media": uses.get(p.policy_id, 0)}
            for p in policies
        ],
        "mediaUnderDeletedPolicies": {
            pid: n for pid, n in sorted(uses.items(), key=lambda u: str(u[0]))
            if pid is not None and pid not in present
        },
        "mediaUnderUnknownPolicy": uses.get(None, 0),
    }  # fmt: skip


def _policy_delete(app: App, a: argparse.Namespace) -> dict[str, Any]:
    app.media.delete_policy(a.policy)
    return {
        "deleted": a.policy,
        "note": "URLs signed under it stop working within 30 seconds",
        **_policies(app),
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m shared.admin", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def cmd(
        name: str, help: str, run: Callable[[App, argparse.Namespace], Any]
    ) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help)
        parser.set_defaults(run=run)
        return parser

    c = cmd(
        "tenant-create",
        "create a tenant (idempotent with --id)",
        lambda app, a: _tenant_view(app, app.directory.create_tenant(a.name, a.id).id),
    )
    c.add_argument("name")
    c.add_argument("--id", help="tenant GUID (default: a new one)")

    cmd(
        "tenant-list",
        "list tenants",
        lambda app, a: [_tenant_view(app, t.id) for t in app.directory.list_tenants()],
    )

    c = cmd("tenant-show", "show one tenant", lambda app, a: _tenant_view(app, a.tenant))
    c.add_argument("tenant")

    c = cmd(
        "webhook-set",
        "set (or clear with '') a tenant's inbound webhook URL",
        lambda app, a: _tenant_view(app, app.directory.set_webhook(a.tenant, a.url).id),
    )
    c.add_argument("tenant")
    c.add_argument("url")

    c = cmd(
        "webhook-rotate-secret",
        "add a new webhook signing secret (the previous one stays)",
        lambda app, a: _tenant_view(
            app, app.directory.rotate_webhook_secret(a.tenant, keep_previous=not a.drop_previous).id
        ),
    )
    c.add_argument("tenant")
    c.add_argument("--drop-previous", action="store_true", help="sign with the newest secret only")

    c = cmd(
        "user-create",
        "create a user",
        lambda app, a: {"email": app.directory.create_user(a.email, _password(a)).email},
    )
    c.add_argument("email")
    c.add_argument("--password-stdin", action="store_true")

    c = cmd(
        "user-set-password",
        "change a user's password",
        _set_password,
    )
    c.add_argument("email")
    c.add_argument("--password-stdin", action="store_true")

    c = cmd(
        "user-grant",
        "let a user act for a tenant",
        lambda app, a: _user_view(app.directory.grant(a.email, a.tenant)),
    )
    c.add_argument("email")
    c.add_argument("tenant")

    c = cmd(
        "user-revoke",
        "stop a user acting for a tenant",
        lambda app, a: _user_view(app.directory.revoke(a.email, a.tenant)),
    )
    c.add_argument("email")
    c.add_argument("tenant")

    cmd(
        "user-list",
        "list users",
        lambda app, a: [_user_view(u) for u in app.directory.list_users()],
    )

    c = cmd(
        "number-provision",
        "provision an E.164 number for a tenant (idempotent)",
        _provision,
    )
    c.add_argument("tenant")
    c.add_argument("number")
    c.add_argument("--carrier", choices=CARRIERS, help="default: the DEFAULT_CARRIER setting")

    c = cmd(
        "number-set-carrier",
        "move a tenant's number to another carrier (its later sends go out through it)",
        _set_carrier,
    )
    c.add_argument("tenant")
    c.add_argument("number")
    c.add_argument("carrier", choices=CARRIERS)

    c = cmd(
        "number-release",
        "release a tenant's number",
        _release,
    )
    c.add_argument("tenant")
    c.add_argument("number")

    cmd(
        "seed-demo",
        "seed the guide's demo account (local emulator only)",
        lambda app, a: seed_demo(app),
    )

    c = cmd(
        "webhook-deadletters",
        "list customer webhooks that could not be delivered",
        _dead_letters,
    )
    c.add_argument("tenant", nargs="?", help="only this tenant's")

    c = cmd(
        "webhook-redeliver",
        "send a webhook again now, same webhook-id: a dead letter gets a new round of retries, "
        "a pending delivery its next retry now (the scheduled one then does nothing)",
        _redeliver,
    )
    c.add_argument("webhook_id", metavar="WEBHOOK_ID", help="a dead letter's id is its webhook-id")
    c.add_argument("--tenant", help="the delivery's tenant (a point read instead of a search)")

    cmd(
        "sas-policy-list",
        "list the media container's stored access policies (at most 5) and the media under each",
        lambda app, a: _policies(app),
    )

    c = cmd(
        "sas-policy-delete",
        "delete a stored access policy, revoking every media URL signed under it (not the "
        "configured SAS_POLICY_ID)",
        _policy_delete,
    )
    c.add_argument("policy", metavar="POLICY_ID")
    return p  # fmt: skip


def _user_view(user: Any) -> dict[str, Any]:
    return {"email": user.email, "tenantIds": sorted(user.tenant_ids)}


def main(argv: Sequence[str] | None = None, app: App | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        app = app or App.build(load_settings(Path("local.settings.json")))
        result = args.run(app, args)
    except (ConfigurationError, ServiceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
