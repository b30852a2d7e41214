"""Status changes of outbound messages, told to the customer's optional `statusCallback` as a
signed webhook, once per (message, status)."""

from __future__ import annotations

from typing import Any

from shared.messages.store import Message, MessageStore
from shared.webhooks import WebhookDeliveries, WebhookTarget

STATUS_EVENT = "message.status"


class MessageStatuses:
    def __init__(self, messages: MessageStore, webhooks: WebhookDeliveries) -> None:
        self._messages = messages
        self._webhooks = webhooks

    def notify(self, message: Message | None) -> None:
        """Queue a signed webhook for this status, once per (message, status), if one was asked
        for. The tenant's webhook secrets sign it, as they sign inbound messages, read at each
        try."""
        if message is None or not message.status_callback:
            return
        payload: dict[str, Any] = {
            "messageId": message.message_id,
            "from": message.from_number,
            "to": message.to,
            "status": message.status,
            "timestamp": message.history[-1]["at"] if message.history else None,
        }
        if message.failure_reason:
            payload["failureReason"] = message.failure_reason
        self._webhooks.enqueue(
            WebhookTarget(message.tenant_id, url=message.status_callback),
            STATUS_EVENT,
            payload,
            idempotency_key=f"{message.message_id}:{message.status}",
        )

    def advance(
        self,
        tenant_id: str,
        message_id: str,
        status: str,
        *,
        reason: str | None = None,
        via: tuple[str, ...] = (),
        carrier_message_id: str | None = None,
    ) -> Message | None:
        """Move a message forward and tell its status callback; None when the move was stale."""
        updated = self._messages.transition(
            tenant_id, message_id, status, reason=reason, via=via,
            carrier_message_id=carrier_message_id,
        )  # fmt: skip
        self.notify(updated)
        return updated
