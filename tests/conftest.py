"""Shared test configuration. Fixtures for plugin authors come from ``nnactive_core.testing``."""
