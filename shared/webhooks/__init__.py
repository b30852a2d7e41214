"""Signed customer webhooks (Standard Webhooks): one signer, one durable delivery path with
retries, dead letters and redelivery, shared by inbound messages and status callbacks."""

from shared.webhooks.deliveries import WebhookDeliveries, WebhookDelivery, WebhookTarget
from shared.webhooks.signing import sign_headers

__all__ = ["WebhookDeliveries", "WebhookDelivery", "WebhookTarget", "sign_headers"]
