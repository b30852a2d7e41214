"""Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`, `webhook-signature`), made by
the `standardwebhooks` reference library so customers can verify with any conforming library."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

# At most two secrets sign at once: the newest and, during a rotation, the one before it.
MAX_SIGNING_SECRETS = 2


@functools.lru_cache(maxsize=256)
def _signer(secret: str) -> Webhook:
    # Decoding a `whsec_` secret is cheap, but retries sign with the same few secrets all day.
    return Webhook(secret)


def sign_headers(
    webhook_id: str, timestamp: datetime, body: str, secrets: Sequence[str]
) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`, with one `v1,` signature per secret
    (space-separated, newest first) so a receiver holding either secret verifies it."""
    if not secrets:
        raise ValueError("a webhook needs at least one signing secret")
    moment = timestamp.astimezone(UTC)
    signatures = [
        _signer(secret).sign(msg_id=webhook_id, timestamp=moment, data=body)
        for secret in secrets[:MAX_SIGNING_SECRETS]
    ]
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
