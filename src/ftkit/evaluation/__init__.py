"""Metrics and evaluation helpers."""
