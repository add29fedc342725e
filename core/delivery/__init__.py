"""Delivery: the outbox's messages handed to a provider, each with a status.

Modules: connectors (the one small interface, and the demo channel), webhook (HTTP POST of
signed JSON batches), smtp (email), config (which provider each channel uses, from the Data
page or the environment), outbox (claim, send, record, retry, expire; what the Outbox view
counts). The guarantees are written in docs/campaigns.md and in core/delivery/outbox.py.
"""
