"""One normalisation step (issue 11, seam 1): what the user gave is read once from the raw document, defaults are
filled in core/spec/defaults.py in order (generic, the backend's own, data-dependent), checks only check, and a
finished spec is read back without filling anything."""

from __future__ import annotations

import pytest

from trainyard.core.backends import get_backend
from trainyard.core.errors import SpecError
from trainyard.core.spec import defaults, normalised, parse_spec, read_spec
from trainyard.core.spec.given import given_paths
from trainyard.core.validate import validate_spec


def xor(backend: str, **training) -> dict:
    return {"backend": backend, "dataset": {"builtin": "xor"},
            "model": {"layers": [{"type": "dense", "units": 2, "activation": "relu"},
                                 {"type": "dense", "units": 1, "activation": "sigmoid"}]},
            "training": {"seed": 3, **training}}


def test_given_is_the_raw_documents_paths():
    doc = xor("sklearn", optimizer={"name": "sgd", "learning_rate": 0.1}, validation_split=0.2)
    given = given_paths(doc)
    assert {"training.optimizer", "training.optimizer.learning_rate", "model.layers[1].activation",
            "dataset.validation_split"} <= given  # training.validation_split is kept in the dataset
    assert "training.optimizer.momentum" not in given and "training.epochs" not in given
    assert "training.optimizer.name" not in given_paths(xor("sklearn", optimizer="sgd"))


@pytest.mark.parametrize("backend", ["numpy", "sklearn", "keras"])
def test_a_backends_check_only_checks(backend):
    spec = parse_spec(xor(backend, early_stopping={"patience": 2}))
    before = normalised(spec)
    assert get_backend(backend).check(spec) == []
    assert normalised(spec) == before


def test_the_steps_run_in_order_generic_backend_data(monkeypatch):
    calls = []
    for step in ("generic", "for_backend", "data"):
        original = getattr(defaults, step)
        monkeypatch.setattr(defaults, step, lambda *a, _step=step, _f=original: (calls.append(_step), _f(*a))[1])
    spec = validate_spec(xor("sklearn"))
    assert calls == ["generic", "for_backend", "data"]
    # each step filled its own: the seed of the split (generic), scikit-learn's batch (backend), metrics (data)
    assert (spec.dataset.seed, spec.training.batch_size, spec.training.metrics) == (3, 200, ["accuracy"])


def test_a_finished_spec_is_read_back_without_filling_anything(monkeypatch):
    document = normalised(validate_spec(xor("sklearn", early_stopping={})))

    def no_filling(*args):
        raise AssertionError("read_spec filled a default")

    for step in ("generic", "for_backend", "data"):
        monkeypatch.setattr(defaults, step, no_filling)
    assert normalised(read_spec(document)) == document
    with pytest.raises(SpecError) as exc:
        read_spec(xor("sklearn"))  # a raw document is not a finished spec: refused, not filled
    assert {e["loc"] for e in exc.value.errors} == {"training.optimizer", "training.loss", "dataset.seed"}


def test_an_invalid_scikit_learn_option_that_early_stopping_copies_is_refused_not_a_crash():
    doc = {**xor("sklearn", early_stopping={}), "backend_options": {"n_iter_no_change": "10"}}
    with pytest.raises(SpecError) as exc:
        validate_spec(doc)
    assert exc.value.errors == [{"loc": "backend_options.n_iter_no_change", "msg": "must be an integer"}]
