"""One source for each name (issue 11, seam 2): every name of the spec's vocabulary is supported or explained for
every backend, and every table that translates a supported name has it.

`test_every_name_is_supported_or_explained_everywhere` is the one place a half-added name fails: add an
activation such as `elu` to `core/spec/vocabulary.py` alone and it lists each table still missing it (the engine
class, the capability table's entry or `why_not` reason for each backend, Keras's translation, the ONNX export).
"""

from __future__ import annotations

import typing

import numpy as np

from trainyard.core import activations, initializers, losses, optimizers
from trainyard.core.backends import keras_backend, keras_build, keras_modelfile, sklearn_spec
from trainyard.core.capabilities import CAPABILITIES
from trainyard.core.export import onnx_graph, stack
from trainyard.core.spec import defaults, models, named, vocabulary

DEVICES = typing.get_args(models.JobSpec.model_fields["device"].annotation)
LAYERS = tuple(typing.get_args(cls.model_fields["type"].annotation)[0]
               for cls in typing.get_args(typing.get_args(models.Layer)[0]))
# kind → (its key in the capability table, the vocabulary's names)
KINDS = {
    "layer": ("layers", LAYERS), "activation": ("activations", tuple(vocabulary.ACTIVATIONS)),
    "initializer": ("initializers", tuple(vocabulary.INITIALIZERS)), "loss": ("losses", vocabulary.LOSSES),
    "optimizer": ("optimizers", tuple(vocabulary.OPTIMIZERS)), "metric": ("metrics", vocabulary.METRICS),
    "device": ("devices", DEVICES),
}
# the engine's registries (core.activations …, owned by the engine) for each kind it implements
ENGINE = {"activation": activations.ACTIVATIONS, "initializer": initializers.INITIALIZERS, "loss": losses.LOSSES,
          "optimizer": optimizers.OPTIMIZERS}
# the spec model that holds each named kind's parameters
NAMED_MODELS = {"activation": (named.Activation, vocabulary.ACTIVATIONS),
                "initializer": (named.Initializer, vocabulary.INITIALIZERS),
                "optimizer": (named.Optimizer, vocabulary.OPTIMIZERS)}


def _capability_problems() -> list[str]:
    """Each vocabulary name is, for each backend, supported or explained (`why_not`) — one of the two."""
    problems = []
    every_name = {name for _, names in KINDS.values() for name in names}
    keys_of = {name: [key for key, names in KINDS.values() if name in names] for name in every_name}
    for backend, caps in CAPABILITIES.items():
        why_not = caps["why_not"]
        for kind, (key, names) in KINDS.items():
            problems += [f"capabilities.py: backend {backend!r} neither supports the {kind} {name!r} nor says why not "
                         f"(add it to {key!r} or to why_not)"
                         for name in names if name not in caps[key] and name not in why_not]
            problems += [f"capabilities.py: backend {backend!r} lists the {kind} {name!r}, which the vocabulary lacks"
                         for name in caps[key] if name not in names]
        # one name may be two kinds (the perceptron loss and optimizer): a reason is stale once every kind is supported
        problems += [f"capabilities.py: backend {backend!r} supports {name!r} yet explains why not"
                     for name in why_not if name in keys_of and all(name in caps[key] for key in keys_of[name])]
        for key in ("hidden_activations", "output_activations"):
            problems += [f"capabilities.py: backend {backend!r} has {key} {name!r} that is not in its activations"
                         for name in caps[key] if name not in caps["activations"]]
        problems += [f"capabilities.py: backend {backend!r} explains {name!r}, which no vocabulary names"
                     for name in why_not if name not in every_name]
        for activation in caps["output_activations"]:
            loss = defaults.default_loss(activation)
            if loss not in caps["losses"]:
                problems.append(f"defaults.py: the default loss {loss!r} of a {activation} output is not one backend "
                                f"{backend!r} supports")
    return problems


def _engine_problems() -> list[str]:
    """What the numpy backend claims is in the engine, and the engine's names and aliases agree with the spec's."""
    problems, numpy = [], CAPABILITIES["numpy"]
    for kind, registry in ENGINE.items():
        key, names = KINDS[kind]
        engine = set(registry.names())
        problems += [f"core/{kind}s.py: backend 'numpy' supports the {kind} {name!r} but the engine registers no "
                     f"class for it" for name in numpy[key] if name not in engine]
        problems += [f"vocabulary.py: the engine registers the {kind} {name!r} but the spec cannot name it"
                     for name in sorted(engine) if name not in names]
        for alias, name in getattr(registry, "_aliases", {}).items():
            if vocabulary.canonical(alias) != name:
                problems.append(f"vocabulary.py: the engine reads the {kind} alias {alias!r} as {name!r}, the spec as "
                                f"{vocabulary.canonical(alias)!r}")
    problems += [f"vocabulary.py: {name!r} is in ENGINE_LACKS but the engine has it"
                 for name in vocabulary.ENGINE_LACKS
                 if any(name in registry.names() for registry in ENGINE.values())]
    return problems


def _spec_problems() -> list[str]:
    """Every parameter a name has is a field of its spec model; aliases point at names, never shadow them."""
    problems = []
    for kind, (model, table) in NAMED_MODELS.items():
        for name, params in table.items():
            problems += [f"spec/named.py: the {kind} {name!r} has the parameter {param!r}, which "
                         f"{model.__name__} has no field for" for param in params if param not in model.model_fields]
    canonical_names = {name for kind, (_, names) in KINDS.items() for name in names}
    for alias, name in vocabulary.ALIASES.items():
        if name not in canonical_names:
            problems.append(f"vocabulary.py: the alias {alias!r} names {name!r}, which the vocabulary lacks")
        if alias in canonical_names:
            problems.append(f"vocabulary.py: the alias {alias!r} shadows a canonical name")
    problems += [f"defaults.py: DEFAULT_LOSS maps {a!r} to {loss!r}; not both are vocabulary names"
                 for a, loss in defaults.DEFAULT_LOSS.items()
                 if a not in vocabulary.ACTIVATIONS or loss not in vocabulary.LOSSES]
    return problems


def _keras_problems() -> list[str]:
    """Keras's translation of every name the keras backend supports, and the model file's allowlists."""
    problems, caps = [], CAPABILITIES["keras"]
    tables = {"activations": keras_build.KERAS_ACTIVATIONS, "initializers": keras_build.KERAS_INITIALIZERS,
              "losses": keras_build.KERAS_LOSSES, "optimizers": keras_build.KERAS_OPTIMIZERS}
    for key, table in tables.items():
        problems += [f"keras_build.py: backend 'keras' supports the {key[:-1]} {name!r} but KERAS_{key.upper()} "
                     f"has no translation" for name in caps[key] if name not in table]
    for name, activation in keras_build.KERAS_ACTIVATIONS.items():
        if activation not in keras_modelfile.ALLOWED_ACTIVATIONS:
            problems.append(f"keras_modelfile.py: ALLOWED_ACTIVATIONS lacks {activation!r} ({name}): every such "
                            "Keras model file would be refused on load")
    problems += [f"keras_build.py: KERAS_METRICS has {m!r}, which the vocabulary lacks"
                 for m in keras_build.KERAS_METRICS if m not in vocabulary.METRICS]
    if set(keras_backend.OPTION_CHECKS) != set(caps["options"]):
        problems.append(f"keras_backend.py: OPTION_CHECKS checks {sorted(keras_backend.OPTION_CHECKS)}, the "
                        f"options (defaults.KERAS_DEFAULTS) are {sorted(caps['options'])}")
    return problems


def _sklearn_problems() -> list[str]:
    """scikit-learn's translation of every name the sklearn backend supports."""
    problems, caps = [], CAPABILITIES["sklearn"]
    problems += [f"sklearn_spec.py: backend 'sklearn' supports the hidden activation {name!r} but SKLEARN_ACTIVATION "
                 "has no scikit-learn name for it" for name in caps["hidden_activations"]
                 if name not in sklearn_spec.SKLEARN_ACTIVATION]
    problems += [f"export/stack.py: scikit-learn's activation {sk!r} ({name}) has no export"
                 for name, sk in sklearn_spec.SKLEARN_ACTIVATION.items()
                 if stack._SKLEARN_ACTIVATIONS.get(sk) != name]
    problems += [f"sklearn_spec.py: the output activation {name!r} has no loss in OUTPUT_LOSS"
                 for name in caps["output_activations"] if name not in sklearn_spec.OUTPUT_LOSS]
    for name in caps["optimizers"]:
        if name not in defaults.SKLEARN_DEFAULTS["optimizers"] or name not in defaults.SKLEARN_SOLVER_OPTIONS:
            problems.append(f"defaults.py: backend 'sklearn' supports the optimizer {name!r} but SKLEARN_DEFAULTS / "
                            "SKLEARN_SOLVER_OPTIONS have no entry for it")
        problems += [f"defaults.py: scikit-learn's default {param!r} for {name!r} is no parameter of the spec's "
                     f"{name!r}" for param in defaults.SKLEARN_DEFAULTS["optimizers"].get(name, {})
                     if param not in vocabulary.OPTIMIZERS.get(name, {})]
    options = set(caps["options"])
    if set(sklearn_spec.OPTION_CHECKS) != options:
        problems.append(f"sklearn_spec.py: OPTION_CHECKS checks {sorted(sklearn_spec.OPTION_CHECKS)}, the options "
                        f"(defaults.SKLEARN_DEFAULTS) are {sorted(options)}")
    problems += [f"defaults.py: SKLEARN_SOLVER_OPTIONS gives {solver!r} the unknown option {o!r}"
                 for solver, names in defaults.SKLEARN_SOLVER_OPTIONS.items() for o in names if o not in options]
    return problems


def _export_problems() -> list[str]:
    """The ONNX export has a form for every activation some backend trains."""
    import onnx

    trained = {name for caps in CAPABILITIES.values() for name in caps["activations"]}
    problems = []
    for name in sorted(trained):
        graph = onnx_graph._Graph(onnx.ModelProto(), np.dtype("float32"))
        try:
            onnx_graph._activation(graph, "z", stack.DenseLayer(np.ones((1, 1)), None, name, 0.1))
        except ValueError:
            problems.append(f"export/onnx_graph.py: the activation {name!r} has no ONNX form")
    return problems


def test_every_name_is_supported_or_explained_everywhere():
    problems = (_capability_problems() + _engine_problems() + _spec_problems() + _keras_problems()
                + _sklearn_problems() + _export_problems())
    assert not problems, "a name is half added; still to do:\n  " + "\n  ".join(problems)
