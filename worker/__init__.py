"""Celery workers: the app factory, publishing job ids, the job runner, the worker entry point, the reconciler."""
