"""A whole job in one call: load the data, check the spec against it, prepare it, train.

`trainyard run` and the workers both go through `train_job`, so a spec trains the same
way locally and on the service.
"""

from __future__ import annotations

import math

from trainyard.core import datasets
from trainyard.core.backends import get_backend
from trainyard.core.backends.base import TrainResult
from trainyard.core.callbacks import Callbacks
from trainyard.core.datasets.upload import Upload
from trainyard.core.errors import Diverged
from trainyard.core.provenance import versions
from trainyard.core.spec import JobSpec, finalize_spec


def train_job(spec: JobSpec, callbacks: Callbacks | None = None, *, upload: Upload | None = None,
              mnist_dir: str | None = None) -> TrainResult:
    """Train `spec` (already parsed and checked by its backend) on its dataset.

    Raises SpecError when the spec does not fit the data, DatasetError when the data
    cannot be read, and whatever the backend raises (Diverged, Cancelled, TimedOut).

    Args:
        upload: the stored file of a `{"id": …}` dataset (the worker reads it from the store).
    """
    raw = datasets.load(spec.dataset, upload=upload, mnist_dir=mnist_dir)
    finalize_spec(spec, datasets.describe(raw))
    data = datasets.prepare(raw, spec.dataset)
    result = get_backend(spec.backend).train(spec, data, callbacks or Callbacks())
    loss = result.metrics.get("loss")
    if isinstance(loss, float) and not math.isfinite(loss):
        # Every epoch's loss was finite but the trained model's is not (e.g. scikit-learn stopped on its
        # tolerance while the loss ran away): the job diverged, it did not succeed.
        epoch = len(result.history) or 1
        raise Diverged(epoch, f"the trained model's loss is not finite (after epoch {epoch})")
    result.versions = {**versions(), **result.versions}
    return result
