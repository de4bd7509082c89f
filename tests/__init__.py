"""Encore test suite."""
