"""Reliability tests: real worker, reconciler and API processes on PostgreSQL + Redis, broken on purpose.

They use the PostgreSQL and Redis of the other service tests (tests/conftest.py: a fresh
database and a private key namespace per test) and skip without them; a test that
flushes or restarts the broker starts its own redis-server. Helpers: tests.support.cluster.
"""
