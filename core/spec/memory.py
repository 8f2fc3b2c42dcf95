"""How much memory training a spec takes, estimated from the spec and its dataset's facts before any data is loaded.

The figure follows the numpy engine (core.training), the heaviest common case; Keras and
scikit-learn hold the same arrays in other places. Each part is what the worker keeps
alive at once, so the sum is a peak, not a total of allocations:

- parameters: weights, gradients, a scratch array, optimizer slots, and the serialised
  copies a checkpoint or the model file makes;
- activations: z, a, their gradients and a mask of every layer for a training batch,
  and z, a and a mask for an evaluation chunk (a full-batch spec's batch is the whole
  training split). Work arrays are kept per shape (core.buffers), so the last, shorter
  batch and every evaluation chunk size of every split hold their own;
- dataset: the loaded float64 features, their float64 splits and the training copy;
- targets: the encoded (one-hot for k classes) targets of every split, and a copy;
- confusion: the k x k int64 confusion matrix and one mini-batch's count of it, and the
  final metrics' confusion matrices of three splits as lists (a pointer per entry).
"""

from __future__ import annotations

from trainyard.core.datasets.catalog import DatasetInfo
from trainyard.core.spec.models import BatchNorm, Dense, Dropout, JobSpec

EVAL_ROWS = 8192  # rows per forward pass when the numpy engine evaluates a split (core.training)
TRAIN_ARRAYS, EVAL_ARRAYS = 4, 2  # float arrays per unit and row: z, a, dz, dx in training; z, a in evaluation
MASK_BYTES = 2  # boolean masks per unit and row (relu's active units, sigmoid's signs)
DATASET_BYTES_PER_VALUE = 16  # a float64 loaded copy and its float64 splits, before the training copy
SERIALISED_COPIES = 2  # np.savez into a buffer, and the bytes taken from it
LBFGS_MEMORY = 10  # scikit-learn's L-BFGS keeps this many pairs of parameter-sized vectors

# Where each part comes from in a spec, and what makes it smaller; `loc` of the error it causes.
PARTS: dict[str, tuple[str, str, str]] = {  # part → (words, loc, what to change)
    "activations": ("batch activations", "training.batch_size", "give a smaller training.batch_size"),
    "parameters": ("parameters and optimizer state", "model.layers", "use fewer or narrower layers"),
    "dataset": ("the dataset", "dataset", "use fewer samples or features"),
    "targets": ("encoded targets", "dataset", "use fewer classes or outputs"),
    "confusion": ("k x k confusion matrices", "dataset", "use fewer classes"),
}


def _itemsize(spec: JobSpec) -> int:
    return 8 if spec.backend_options.get("dtype") == "float64" else 4


def _slots(spec: JobSpec) -> int:
    """Parameter-sized arrays the optimizer keeps (Keras's and scikit-learn's as core.optimizers')."""
    o = spec.training.optimizer
    momentum = 1 if o.momentum else 0
    return {"adam": 2, "rmsprop": 1 + momentum, "sgd": momentum, "lbfgs": 2 * LBFGS_MEMORY}.get(o.name, 0)


def _layers(spec: JobSpec, n_features: int) -> tuple[int, int, int]:
    """Trainable parameters, non-trainable state (batch-norm moving statistics), and the summed layer widths."""
    params, state, width, fan_in = 0, 0, 0, n_features
    for layer in spec.model.layers:
        if isinstance(layer, Dense):
            params += fan_in * layer.units + (layer.units if layer.use_bias else 0)
            fan_in = layer.units
            width += layer.units
        elif isinstance(layer, BatchNorm):
            params += 2 * fan_in
            state += 2 * fan_in
            width += fan_in
        elif isinstance(layer, Dropout):
            width += fan_in  # its mask
    return params, state, width


def split_rows(spec: JobSpec, n_samples: int) -> tuple[int, int, int]:
    """Rows of the train, validation and test splits of `n_samples` (as core.datasets splits them)."""
    from trainyard.core.datasets.preprocess import split_size  # at call time: that package imports core.spec

    d = spec.dataset
    n_test, n_val = split_size(d.test_split or 0.0, n_samples), split_size(d.validation_split, n_samples)
    return max(0, n_samples - n_test - n_val), n_val, n_test


def _training_rows(spec: JobSpec, n_train: int) -> int:
    """Rows of training work arrays: a batch (all of the split when `batch_size` is null) and the last, shorter one."""
    batch = spec.training.batch_size
    if not n_train:
        return batch or 1
    if batch is None or batch >= n_train:
        return n_train
    return batch + n_train % batch


def _evaluation_rows(splits: tuple[int, ...]) -> int:
    """Rows of evaluation work arrays: one set per distinct chunk size of the splits (a full chunk, a remainder)."""
    sizes = {min(m, EVAL_ROWS) for m in splits if m} | {m % EVAL_ROWS for m in splits if m > EVAL_ROWS}
    return sum(sizes - {0}) or EVAL_ROWS


def estimate_size(spec: JobSpec, info: DatasetInfo) -> dict:
    """Trainable parameters, and bytes: the estimated peak memory of training `spec` on a dataset like `info`.

    Returns `{"parameters": int, "bytes": int, "parts": {part: bytes}}` with the parts of `PARTS`.
    A dataset of unknown size (`n_samples` None) counts as empty, except for one evaluation chunk.
    """
    size, n, f = _itemsize(spec), info.n_samples or 0, info.n_features
    params, state, width = _layers(spec, f)
    splits = split_rows(spec, n)
    copies = 3 + _slots(spec) + SERIALISED_COPIES
    k = (info.n_classes or 0) if info.task == "classification" else 0
    parts = {
        "activations": (f + width) * (_training_rows(spec, splits[0]) * (TRAIN_ARRAYS * size + MASK_BYTES)
                                      + _evaluation_rows(splits) * (EVAL_ARRAYS * size + MASK_BYTES)),
        "parameters": size * (params * copies + state),
        "dataset": n * f * (DATASET_BYTES_PER_VALUE + size),
        "targets": 2 * size * n * spec.model.output.units,
        "confusion": (2 + 3) * 8 * k * k,
    }
    return {"parameters": params, "bytes": sum(parts.values()), "parts": parts}
