"""The numpy backend: trainyard's own engine (core.training) behind the Backend interface."""

from __future__ import annotations

import numpy as np

from trainyard.core.backends.base import TrainResult
from trainyard.core.callbacks import Callbacks
from trainyard.core.capabilities import table_errors
from trainyard.core.datasets.prepared import PreparedData
from trainyard.core.modelfile import NumpyPredictor, load_model, save_model
from trainyard.core.provenance import versions as library_versions
from trainyard.core.spec import JobSpec, normalised
from trainyard.core.training import fit

DTYPES = ("float32", "float64")


class NumpyBackend:
    """Trains with core.training in float32 (default) or float64; model files are `.npz`."""

    name = "numpy"
    model_format = "npz"

    def check(self, spec: JobSpec) -> list[dict]:
        """What the engine cannot express (`backend_options.dtype` is filled by core/spec/defaults.py)."""
        errors = table_errors(spec)
        if spec.backend_options.get("dtype") not in DTYPES:
            errors.append({"loc": "backend_options.dtype", "msg": f"dtype must be one of {', '.join(DTYPES)}"})
        return errors

    def train(self, spec: JobSpec, data: PreparedData, callbacks: Callbacks) -> TrainResult:
        fitted = fit(spec, data, callbacks, np.dtype(spec.backend_options["dtype"]))
        versions = library_versions()  # all the numpy engine uses: the model file records them
        model = save_model(fitted.network, normalised(spec), data.preprocessing, versions)
        return TrainResult(history=fitted.history, metrics=fitted.metrics, model=model, format=self.model_format,
                           stopped_early=fitted.stopped_early, versions=versions)

    def load(self, model: bytes) -> NumpyPredictor:
        return load_model(model)
