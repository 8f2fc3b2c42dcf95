"""Every default a job spec gets, and the order it gets them in: read this module top to bottom.

What the user gave is computed once, from the raw document (`core/spec/given.py`); a default
fills only a field the user did not give. The order, each step seeing the one before:

0. **Declared constants**, applied while pydantic parses the document: the field defaults on the
   spec's models (`TrainingSpec.batch_size` 32 and `epochs` 1, Dense's `glorot_uniform` / `zeros`
   initializers, BatchNorm's momentum: Keras's own), every named object's parameters (their
   defaults are the engine classes' signatures, read by `vocabulary.py`), and the dataset's own
   (`dataset` below: test_split, n_samples, noise; `DatasetSpec` calls it, so a DatasetSpec alone
   is complete, as the datasets package takes one).
1. **Generic** (`generic`): what follows from the rest of the spec: the training seed (drawn and
   recorded), the split seed, the optimizer and loss that go with the output activation, early
   stopping's monitor. `parse_spec` runs the structural checks after this step.
2. **The backend's own** (`for_backend`): each backend's table replaces the Keras-style constants of
   step 0 that the user did not give: `NUMPY_DEFAULTS`, `SKLEARN_DEFAULTS` (scikit-learn's epochs,
   batch size, solver and its parameters, options; early stopping's patience / min_delta and the
   options n_iter_no_change / tol fill each other), `KERAS_DEFAULTS`.
3. **Data-dependent** (`data`): the metrics that suit the task, and an uploaded dataset's task. At
   submit when the dataset's facts are known (a builtin, an upload), else once `trainyard run` has
   read the file (`finalize_spec`, from `trainyard.core.job.train_job`).

`parse_spec` runs steps 0-2, `validate_spec` adds the backend's check and step 3, and the result is
finished: it is stored as `normalised(spec)`, and the worker re-reads it with `read_spec`, which
fills nothing. A backend's `check` only checks; so does every other check.

Where is a scikit-learn job's default batch size set? `SKLEARN_DEFAULTS["batch_size"]`, applied
by `_sklearn` in step 2 over step 0's 32.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Callable

from trainyard.core.datasets.catalog import GATES, GENERATED, DatasetInfo
from trainyard.core.spec.named import Optimizer

if TYPE_CHECKING:
    from trainyard.core.spec.models import DatasetSpec, JobSpec

Given = frozenset  # field paths present in the raw document (given.given_paths)

# --- step 0: the dataset's own ----------------------------------------------------------------

TEST_SPLIT = 0.25
GATES_TEST_SPLIT = 0.0  # the logic gates train and test on their 4 rows
GENERATED_DEFAULTS: dict[str, Any] = {"n_samples": 200, "noise": 0.1}  # moons, circles


def default_test_split(builtin: str | None) -> float:
    return GATES_TEST_SPLIT if builtin in GATES else TEST_SPLIT


def dataset(ds: DatasetSpec) -> None:
    """Fill a dataset's own defaults: the generated datasets' size and noise, and the test split."""
    if ds.builtin in GENERATED:
        for key, value in GENERATED_DEFAULTS.items():
            if getattr(ds, key) is None:
                setattr(ds, key, value)
    if ds.test_split is None:
        ds.test_split = default_test_split(ds.builtin)


# --- step 1: generic --------------------------------------------------------------------------

# output activation → the loss that goes with it (others: mean_squared_error)
DEFAULT_LOSS = {"sigmoid": "binary_crossentropy", "softmax": "categorical_crossentropy", "step": "perceptron"}


def default_loss(output_activation: str) -> str:
    return DEFAULT_LOSS.get(output_activation, "mean_squared_error")


def default_optimizer(output_activation: str) -> str:
    """The perceptron rule for step units (the only rule that trains them), else Keras's rmsprop."""
    return "perceptron" if output_activation == "step" else "rmsprop"


def generic(spec: JobSpec, given: Given) -> None:
    """Step 1: the defaults that follow from the rest of the spec, whatever the backend."""
    t, activation = spec.training, spec.model.output.activation.name
    if t.seed is None:
        t.seed = random.SystemRandom().randrange(2**31)
    if spec.dataset.seed is None:
        spec.dataset.seed = t.seed
    if t.optimizer is None:
        t.optimizer = Optimizer(name=default_optimizer(activation))
    if t.loss is None:
        t.loss = default_loss(activation)
    if t.early_stopping is not None and t.early_stopping.monitor is None:
        t.early_stopping.monitor = "val_loss" if spec.dataset.validation_split > 0 else "loss"


# --- step 2: the backend's own ----------------------------------------------------------------

NUMPY_DEFAULTS: dict[str, Any] = {"options": {"dtype": "float32"}}
# Everything scikit-learn's MLPClassifier / MLPRegressor does when a setting is left out; a test
# compares them with scikit-learn's own `get_params()` so they cannot drift from the installed version.
SKLEARN_DEFAULTS: dict[str, Any] = {
    "epochs": 200,  # max_iter
    "batch_size": 200,  # "auto" = min(200, n); a batch larger than the split is clipped, so 200 says the same
    "optimizer": "adam",
    "optimizers": {
        "sgd": {"learning_rate": 0.001, "momentum": 0.9, "nesterov": True},
        "adam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8},
        "lbfgs": {},
    },
    "options": {"alpha": 0.0001, "tol": 0.0001, "n_iter_no_change": 10, "learning_rate_schedule": "constant",
                "power_t": 0.5, "max_fun": 15000, "dtype": "float64"},
}
# backend_options that mean something for each scikit-learn solver (filled for it; the others are refused)
SKLEARN_SOLVER_OPTIONS: dict[str, tuple[str, ...]] = {
    "sgd": ("alpha", "tol", "n_iter_no_change", "learning_rate_schedule", "power_t", "dtype"),
    "adam": ("alpha", "tol", "n_iter_no_change", "dtype"),
    "lbfgs": ("alpha", "tol", "max_fun", "dtype"),
}
# early_stopping's fields and the scikit-learn options that say the same thing
SKLEARN_EARLY_STOPPING = (("patience", "n_iter_no_change"), ("min_delta", "tol"))
KERAS_DEFAULTS: dict[str, Any] = {
    "options": {"jit_compile": "auto", "steps_per_execution": 1, "intra_op_threads": 0, "inter_op_threads": 0},
}


def _numpy(spec: JobSpec, given: Given) -> None:
    for key, value in NUMPY_DEFAULTS["options"].items():
        spec.backend_options.setdefault(key, value)


def _sklearn(spec: JobSpec, given: Given) -> None:
    """scikit-learn's defaults in place of step 0's Keras-style ones, and the solver's options."""
    t, options = spec.training, spec.backend_options
    if "training.epochs" not in given:
        t.epochs = SKLEARN_DEFAULTS["epochs"]
    if "training.batch_size" not in given:
        t.batch_size = SKLEARN_DEFAULTS["batch_size"]
    if "training.optimizer" not in given:
        t.optimizer = Optimizer(name=SKLEARN_DEFAULTS["optimizer"])
    for key, value in SKLEARN_DEFAULTS["optimizers"].get(t.optimizer.name, {}).items():
        if f"training.optimizer.{key}" not in given:
            setattr(t.optimizer, key, value)
    es = t.early_stopping
    if es is not None:  # each side fills the other; both given and different is the check's to refuse
        for field, option in SKLEARN_EARLY_STOPPING:
            if f"training.early_stopping.{field}" not in given:
                setattr(es, field, options.get(option, SKLEARN_DEFAULTS["options"][option]))
            options.setdefault(option, getattr(es, field))
    for key in SKLEARN_SOLVER_OPTIONS.get(t.optimizer.name, ()):
        options.setdefault(key, SKLEARN_DEFAULTS["options"][key])


def _keras(spec: JobSpec, given: Given) -> None:
    for key, value in KERAS_DEFAULTS["options"].items():
        spec.backend_options.setdefault(key, value)


BACKEND_STEPS: dict[str, Callable[[JobSpec, Given], None]] = {"numpy": _numpy, "sklearn": _sklearn, "keras": _keras}


def for_backend(spec: JobSpec, given: Given) -> None:
    """Step 2: the backend's own defaults."""
    BACKEND_STEPS[spec.backend](spec, given)


# --- step 3: data-dependent -------------------------------------------------------------------

def default_metrics(task: str) -> list[str]:
    return ["accuracy"] if task == "classification" else ["mean_absolute_error"]


def data(spec: JobSpec, info: DatasetInfo) -> None:
    """Step 3: the defaults that need the dataset's facts."""
    if spec.training.metrics is None:
        spec.training.metrics = default_metrics(info.task)
    if spec.dataset.task is None and spec.dataset.builtin is None:
        spec.dataset.task = info.task
