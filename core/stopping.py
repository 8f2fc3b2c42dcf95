"""Why a job trained fewer epochs than its spec asked for, in words a person can act on (from the normalised spec)."""

from __future__ import annotations

from typing import Any


def stop_reason(spec: dict[str, Any] | None, epochs_trained: int) -> str | None:
    """Why training ended after `epochs_trained` of the spec's epochs, or None when it ran them all.

    An early stop is either the spec's `training.early_stopping` (any backend) or, for scikit-learn without it,
    scikit-learn's own convergence rule (`tol`, `n_iter_no_change`; L-BFGS: its own tolerances).
    """
    spec = spec or {}
    training = spec.get("training") or {}
    epochs = training.get("epochs")
    if not isinstance(epochs, int) or epochs_trained >= epochs or epochs_trained <= 0:
        return None
    head = f"stopped early at epoch {epochs_trained} of {epochs}"
    es = training.get("early_stopping")
    options = spec.get("backend_options") or {}
    if spec.get("backend") == "sklearn":
        if (training.get("optimizer") or {}).get("name") == "lbfgs":
            return f"{head}: scikit-learn's L-BFGS solver converged (its loss and gradient tolerances)"
        monitor = (es or {}).get("monitor") or "loss"
        what = "the training loss" if monitor == "loss" else monitor
        return (f"{head}: {what} improved by less than tol={options.get('tol', 0.0001):g} for "
                f"n_iter_no_change={options.get('n_iter_no_change', 10)} epochs in a row (scikit-learn's convergence "
                "rule; lower backend_options.tol or raise n_iter_no_change to train longer)")
    if es:
        monitor = es.get("monitor") or "val_loss"
        return (f"{head}: {monitor} did not improve by more than min_delta={es.get('min_delta', 0):g} for "
                f"patience={es.get('patience', 0)} epochs (training.early_stopping)")
    return head
