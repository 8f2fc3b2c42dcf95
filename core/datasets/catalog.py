"""What every builtin dataset is, known without loading it: used to validate specs at submit time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    """The facts about a dataset a spec is checked against."""

    task: str  # "classification" | "regression"
    n_features: int
    n_classes: int | None = None  # None for regression
    n_samples: int | None = None
    n_targets: int = 1  # regression outputs
    description: str = ""


GATES = ("and", "or", "nand", "xor")

BUILTINS: dict[str, DatasetInfo] = {
    "and": DatasetInfo("classification", 2, 2, 4, description="logic gate AND (4 rows)"),
    "or": DatasetInfo("classification", 2, 2, 4, description="logic gate OR (4 rows)"),
    "nand": DatasetInfo("classification", 2, 2, 4, description="logic gate NAND (4 rows)"),
    "xor": DatasetInfo("classification", 2, 2, 4, description="logic gate XOR (4 rows)"),
    "digits": DatasetInfo("classification", 64, 10, 1797, description="8x8 handwritten digits (scikit-learn)"),
    "iris": DatasetInfo("classification", 4, 3, 150, description="iris flowers (scikit-learn)"),
    "breast_cancer": DatasetInfo("classification", 30, 2, 569, description="Wisconsin breast cancer (scikit-learn)"),
    "wine": DatasetInfo("classification", 13, 3, 178, description="wine cultivars (scikit-learn)"),
    "moons": DatasetInfo("classification", 2, 2, None, description="two interleaving half circles (generated; n_samples, noise)"),
    "circles": DatasetInfo("classification", 2, 2, None, description="two concentric circles (generated; n_samples, noise)"),
    "diabetes": DatasetInfo("regression", 10, None, 442, description="diabetes progression regression (scikit-learn)"),
    "mnist": DatasetInfo("classification", 784, 10, None, description="MNIST 28x28 digits from IDX files in TRAINYARD_MNIST_DIR"),
}

GENERATED = ("moons", "circles")  # builtins that accept n_samples / noise
