"""The backends behind one interface (`base.Backend`), looked up by the spec's `backend` name."""

from __future__ import annotations

import importlib
import io
import zipfile

from trainyard.core.backends.base import Backend, Predictor
from trainyard.core.errors import ZIP_READ_ERRORS, ModelFileError

# name → (module, class); modules are imported on first use so TensorFlow loads only for keras jobs.
_BACKENDS = {
    "numpy": ("trainyard.core.backends.numpy_engine", "NumpyBackend"),
    "sklearn": ("trainyard.core.backends.sklearn_backend", "SklearnBackend"),
    "keras": ("trainyard.core.backends.keras_backend", "KerasBackend"),
}
# model file format → backend name
FORMATS = {"npz": "numpy", "skops": "sklearn", "keras": "keras"}


def get_backend(name: str) -> Backend:
    """The backend registered as `name` (one of the spec's `backend` values)."""
    module, cls = _BACKENDS[name]
    return getattr(importlib.import_module(module), cls)()


def sniff_format(model: bytes) -> str:
    """Tell a model file's format from its zip members (all three formats are zip archives)."""
    try:
        names = set(zipfile.ZipFile(io.BytesIO(model)).namelist())
    except (ValueError, *ZIP_READ_ERRORS):
        raise ModelFileError("not a trainyard model file (not a zip archive)") from None
    if "trainyard.npy" in names:
        return "npz"
    if "schema.json" in names:
        return "skops"
    if "config.json" in names and "metadata.json" in names:
        return "keras"
    raise ModelFileError("not a trainyard model file (unknown archive layout)")


def load_predictor(model: bytes) -> Predictor:
    """Rebuild a predictor from model-file bytes of any backend, without unpickling."""
    return get_backend(FORMATS[sniff_format(model)]).load(model)


def load_serving_predictor(model: bytes) -> Predictor:
    """What the API predicts with: `load_predictor`, except that a Keras file answers through its numpy copy
    (`keras_modelfile.WEIGHTS_MEMBER`), so an API process never imports TensorFlow for it; a Keras file saved
    before the copy existed still loads with Keras."""
    if sniff_format(model) == "keras":
        from trainyard.core.backends import keras_modelfile

        if keras_modelfile.has_numpy_copy(model):
            return keras_modelfile.numpy_copy(model)
    return load_predictor(model)
