"""Metrics agree with scikit-learn, and accumulating mini-batches equals one pass."""

import numpy as np
import pytest
from sklearn import metrics as skm

from trainyard.core.metrics import ClassificationAccumulator, RegressionAccumulator, evaluate


@pytest.fixture
def labels():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, 200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 4, 200))
    y_pred[y_pred == 3] = 2  # class 3 never predicted: precision's zero-division case
    return y_true, y_pred


def test_classification_matches_sklearn(labels):
    y_true, y_pred = labels
    got = evaluate(["accuracy", "precision", "recall", "f1"], "classification", y_true, y_pred, 4)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y_true, y_pred, average="macro", zero_division=0))
    assert got["recall"] == pytest.approx(skm.recall_score(y_true, y_pred, average="macro", zero_division=0))
    assert got["f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert got["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=range(4)).tolist()


def test_absent_class_is_left_out_of_macro_average():
    # class 2 appears in neither y_true nor y_pred: scikit-learn averages over 0 and 1 only
    got = evaluate(["precision", "recall"], "classification", np.array([0, 1, 1]), np.array([0, 1, 0]), 3)
    assert got["precision"] == pytest.approx(skm.precision_score([0, 1, 1], [0, 1, 0], average="macro"))
    assert got["recall"] == pytest.approx(0.75)


def test_batches_accumulate_to_one_pass(labels):
    y_true, y_pred = labels
    acc = ClassificationAccumulator(4)
    for s in range(0, 200, 32):
        acc.update(y_true[s:s + 32], y_pred[s:s + 32])
    names = ["accuracy", "precision", "recall", "f1"]
    whole = evaluate(names, "classification", y_true, y_pred, 4)
    assert acc.result(names) == {k: whole[k] for k in names}


@pytest.mark.parametrize("outputs", [1, 3])
def test_regression_matches_sklearn(outputs):
    rng = np.random.default_rng(1)
    y = rng.normal(size=(100, outputs)) * 3 + 1
    p = y + rng.normal(size=y.shape)
    if outputs == 1:
        y, p = y[:, 0], p[:, 0]
    names = ["mean_squared_error", "mean_absolute_error", "r2"]
    got = evaluate(names, "regression", y, p, None)
    assert got["mean_squared_error"] == pytest.approx(skm.mean_squared_error(y, p))
    assert got["mean_absolute_error"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert got["r2"] == pytest.approx(skm.r2_score(y, p))
    acc = RegressionAccumulator(outputs)
    for s in range(0, 100, 7):
        acc.update(y[s:s + 7], p[s:s + 7])
    assert acc.result(names) == pytest.approx(got)


def test_wrong_metric_for_task_is_refused():
    with pytest.raises(ValueError, match="r2"):
        evaluate(["r2"], "classification", np.zeros(3), np.zeros(3), 2)


@pytest.mark.parametrize("y, p", [
    (np.full(10, 0.1), np.full(10, 0.1)),  # constant target predicted exactly: 1
    (np.full(10, 0.1), np.full(10, 0.11)),  # constant target missed: 0 (Σy² - (Σy)²/n used to leave ~1e-17: -7e13)
    (np.full(10, 7.7), np.linspace(7, 8, 10)),
    (1e8 + np.arange(10.0), 1e8 + np.arange(10.0) + 0.5),  # a large mean: raw sums cancelled to R² = 0
])
def test_r2_on_constant_or_offset_targets_matches_sklearn(y, p):
    expected = skm.r2_score(y, p)
    assert evaluate(["r2"], "regression", y, p, None)["r2"] == pytest.approx(expected, abs=1e-9)
    acc = RegressionAccumulator(1)
    for s in range(0, 10, 3):
        acc.update(y[s:s + 3], p[s:s + 3])
    assert acc.result(["r2"])["r2"] == pytest.approx(expected, abs=1e-9)


def test_r2_of_one_sample_is_undefined_as_in_sklearn():
    assert np.isnan(evaluate(["r2"], "regression", np.array([1.0]), np.array([2.0]), None)["r2"])


def test_direction_of_every_quantity():
    # the one table early stopping reads in all three backends
    from trainyard.core.metrics import CLASSIFICATION, REGRESSION, minimised

    assert minimised("loss") and minimised("val_loss") and minimised("val_mean_absolute_error")
    assert [m for m in CLASSIFICATION + REGRESSION if minimised(m)] == ["mean_squared_error", "mean_absolute_error"]
