"""trainyard's tests, one folder per package or concern; shared helpers in `tests.support`."""
