"""Targets ↔ outputs, shared by every backend: exact encodings, decodings and probabilities."""

import numpy as np

from trainyard.core.targets import decode, encode, probabilities, values


def test_encode_one_unit_k_units_and_regression():
    y = np.array([1, 0, 2])
    np.testing.assert_array_equal(encode(np.array([1, 0, 1]), "classification", 1, np.float32), [[1], [0], [1]])
    onehot = encode(y, "classification", 3, np.float32)
    assert onehot.dtype == np.float32
    np.testing.assert_array_equal(onehot, [[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(encode(np.array([[1.5, 2], [3, 4]]), "regression", 2, np.float64), [[1.5, 2], [3, 4]])


def test_decode_threshold_argmax_and_values():
    np.testing.assert_array_equal(decode(np.array([[0.5], [0.51], [0.2]]), "classification"), [0, 1, 0])  # > 0.5
    np.testing.assert_array_equal(decode(np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]]), "classification"), [1, 0])
    out = np.array([[1.5], [2.5]])
    assert decode(out, "regression") is out
    np.testing.assert_array_equal(values(out), [1.5, 2.5])
    np.testing.assert_array_equal(values(np.ones((2, 3))), np.ones((2, 3)))


def test_probabilities_are_non_negative_rows_that_sum_to_one():
    np.testing.assert_allclose(probabilities(np.array([[0.25], [1.2], [-0.1]])), [[0.75, 0.25], [0, 1], [1, 0]])
    # k sigmoid or linear units trained with squared error: clipped at 0, then normalised
    np.testing.assert_allclose(probabilities(np.array([[0.5, 0.5, 1.0], [-0.2, 0.3, 0.1], [-1.0, -2.0, 0.0]])),
                               [[0.25, 0.25, 0.5], [0, 0.75, 0.25], [1 / 3, 1 / 3, 1 / 3]])
