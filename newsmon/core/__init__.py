"""The bottom layer: errors, settings, locks and the records every other layer shares.

Imports nothing from the rest of newsmon (tests/test_architecture.py checks it)."""
