"""Helpers shared by the tests that are not fixtures themselves."""
