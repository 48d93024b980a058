"""Policies, items and use cases: the checks of their bodies and the writes to them."""
