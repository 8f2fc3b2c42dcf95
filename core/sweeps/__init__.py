"""Hyperparameter sweeps: the request and its space (request.py), paths into a spec (paths.py), and the Optuna glue
that picks parameters and prunes trials from a sweep's rows (search.py, which imports Optuna when first used)."""
