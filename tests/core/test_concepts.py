"""core.CONCEPTS: every concept of the course notes names real objects of the engine."""

import importlib

import pytest

from trainyard import core

NOTES = ["perceptron", "activations", "losses", "forward propagation", "backprop", "gradient descent", "SGD",
         "momentum", "regularisation", "dropout", "batch norm", "soft-max"]


def test_every_concept_of_the_notes_is_mapped():
    assert set(NOTES) <= set(core.CONCEPTS)


@pytest.mark.parametrize("target", sorted({t for targets in core.CONCEPTS.values() for t in targets}))
def test_every_entry_resolves_to_a_real_object(target):
    module_name, _, qualname = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    assert callable(obj)
    assert obj.__doc__, f"{target} has no docstring to read"
