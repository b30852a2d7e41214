"""Inbound MMS from the carrier: the signed webhook that records and queues each event, the
queue-triggered processing that re-hosts attachments, and the customer's view of the result."""
