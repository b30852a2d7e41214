"""Signed customer webhooks (Standard Webhooks): one signer, one durable delivery path with
retries, dead letters and redelivery, shared by inbound messages and status callbacks."""

from shared.webhooks.dead_letters import list_dead_letters, redeliver
from shared.webhooks.deliveries import (
    Delivery,
    WebhookTarget,
    deliver,
    delivery_view,
    enqueue_webhook,
)
from shared.webhooks.signing import sign_headers

__all__ = [
    "Delivery",
    "WebhookTarget",
    "deliver",
    "delivery_view",
    "enqueue_webhook",
    "list_dead_letters",
    "redeliver",
    "sign_headers",
]
