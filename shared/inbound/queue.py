"""The inbound queue: one message per recorded event, naming it for the process_inbound trigger."""

from __future__ import annotations

import json

from shared.storage import Storage, storage_errors


class ProcessingQueue:
    def __init__(self, storage: Storage, name: str) -> None:
        self._storage = storage
        self._name = name

    def send(self, tenant_id: str, message_id: str) -> None:
        body = json.dumps({"tenantId": tenant_id, "messageId": message_id})
        with storage_errors():
            self._storage.queue(self._name).send_message(body)
