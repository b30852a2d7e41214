"""Outbound SMS/MMS: validation, acceptance, delivery through a carrier gateway, and status."""
