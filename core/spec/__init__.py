"""The job spec (DESIGN §4): pydantic models, name normalisation, defaults and cross-field checks.

Validation has two phases. `parse_spec(document)` checks everything that needs no
data (structure, names, parameters, legal layer/loss/optimizer combinations) and fills the
defaults that need none. `finalize_spec(spec, info)` then checks the spec against the dataset it
will train on (output units vs classes, task vs loss and metrics) and fills the defaults that
depend on it (metrics, task). Every default, and the order they are filled in, is in
`core/spec/defaults.py`. Both raise `SpecError` whose errors carry field paths such as
`model.layers[2].activation`. `read_spec(document)` reads a finished spec back without filling
anything (the worker). `estimate_size(spec, info)` says how much memory training it takes
(core/spec/memory.py); the API holds it to `worker_memory_bytes`.
"""

from trainyard.core.spec.checks import builtin_info, finalize_spec, json_schema, normalised, parse_spec, read_spec
from trainyard.core.spec.defaults import DEFAULT_LOSS, default_metrics
from trainyard.core.spec.memory import estimate_size
from trainyard.core.spec.models import (BatchNorm, DatasetSpec, Dense, Dropout, EarlyStopping, JobSpec,
                                        ModelSpec, TrainingSpec)
from trainyard.core.spec.named import Activation, Initializer, Optimizer, Regularizer
from trainyard.core.spec.vocabulary import (ACTIVATIONS, ALIASES, BACKENDS, CLASSIFICATION_METRICS, INITIALIZERS,
                                            LOSSES, METRICS, OPTIMIZERS, REGRESSION_METRICS, canonical)

__all__ = [
    "ACTIVATIONS", "ALIASES", "BACKENDS", "CLASSIFICATION_METRICS", "DEFAULT_LOSS", "INITIALIZERS", "LOSSES",
    "METRICS", "OPTIMIZERS", "REGRESSION_METRICS", "Activation", "BatchNorm", "DatasetSpec", "Dense", "Dropout",
    "EarlyStopping", "Initializer", "JobSpec", "ModelSpec", "Optimizer", "Regularizer", "TrainingSpec",
    "builtin_info", "canonical", "default_metrics", "estimate_size", "finalize_spec", "json_schema", "normalised",
    "parse_spec", "read_spec",
]
