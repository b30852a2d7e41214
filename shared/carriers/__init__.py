"""Real carriers (Twilio, Telnyx, Bandwidth), each in its own protocol: sending, status callbacks
and inbound messages, routed by the carrier each provisioned number belongs to.

Importing this package imports no provider SDK: only `twilio.request_validator` (standard library
underneath) is loaded, and only when a Twilio request is verified. See docs/carriers.md.
"""
