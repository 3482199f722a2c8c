"""Annotation cost metrics."""
