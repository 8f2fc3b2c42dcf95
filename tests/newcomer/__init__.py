"""Tests of newcomer."""
