"""A `DenseStack` as one ONNX graph: raw rows in, the predict API's answer out, built with `onnx.helper`.

Input `inputs`: double `(n, n_features)`, raw (unscaled) features. The graph scales them as
the training split was scaled (in double, as the service does), casts them to the model's
own dtype (float32 or float64), runs the dense stack in inference form (no dropout, batch
norm with its moving averages) and answers with the predict API's fields:

- classification: `predictions` `(n,)`, the original class labels (strings, int64 or
  double), and `probabilities` double `(n, k)`, columns in the order of `classes` (the
  model's metadata, and predict's `classes`);
- regression: `predictions` double, `(n,)` for one output, else `(n, n_outputs)`.
"""

from __future__ import annotations

import json

import numpy as np

from trainyard.core.export.stack import BatchNormLayer, DenseLayer, DenseStack

OPSET = 17  # every ONNX runtime of the last years runs it
IR_VERSION = 8  # the IR version of opset 17: a newer onnx package would stamp one older runtimes refuse
ONNX_TYPES = {np.dtype("float32"): 1, np.dtype("float64"): 11}  # TensorProto.FLOAT, DOUBLE


class _Graph:
    """Nodes and constants written straight into one ModelProto's graph (each weight is copied once)."""

    def __init__(self, model, dtype: np.dtype):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.graph, self.dtype = model.graph, dtype
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, value, stem: str = "c", dtype=None) -> str:
        array = np.asarray(value, dtype=dtype if dtype is not None else self.dtype)
        if array.dtype.kind == "U":
            array = array.astype(object)
        name = self.name(stem)
        self.graph.initializer.add().CopyFrom(self.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], stem: str | None = None, output: str | None = None, **attrs) -> str:
        out = output or self.name(stem or op_type.lower())
        self.graph.node.append(self.helper.make_node(op_type, inputs, [out], **attrs))
        return out


def _activation(g: _Graph, z: str, layer: DenseLayer) -> str:
    """h(z) as the numpy engine computes it (step: 1 where z >= 0; leaky ReLU: z where z > 0, else alpha z)."""
    name = layer.activation
    if name == "linear":
        return z
    if name in ("relu", "sigmoid", "tanh"):
        return g.op({"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}[name], [z])
    if name == "softmax":
        return g.op("Softmax", [z], axis=-1)
    zero = g.const(0.0)
    if name == "step":
        return g.op("Cast", [g.op("GreaterOrEqual", [z, zero])], to=ONNX_TYPES[g.dtype])
    if name == "leaky_relu":  # Where, not LeakyRelu: onnxruntime's LeakyRelu has no double kernel
        return g.op("Where", [g.op("Greater", [z, zero]), z, g.op("Mul", [z, g.const(layer.alpha)])])
    raise ValueError(f"activation {name!r} has no ONNX form")


def _layers(g: _Graph, x: str, stack: DenseStack) -> str:
    for layer in stack.layers:
        if isinstance(layer, DenseLayer):
            x = g.op("MatMul", [x, g.const(layer.kernel, "kernel")])
            if layer.bias is not None:
                x = g.op("Add", [x, g.const(layer.bias, "bias")])
            x = _activation(g, x, layer)
        elif isinstance(layer, BatchNormLayer):
            inv_std = 1 / np.sqrt(np.asarray(layer.variance, g.dtype) + layer.epsilon)
            x = g.op("Sub", [x, g.const(layer.mean, "moving_mean")])
            x = g.op("Mul", [x, g.const(inv_std, "inv_std")])
            x = g.op("Mul", [x, g.const(layer.gamma, "gamma")])
            x = g.op("Add", [x, g.const(layer.beta, "beta")])
    return x


def _probabilities(g: _Graph, out: str, units: int) -> str:
    """`trainyard.core.targets.probabilities`: [1 - p, p] for one unit (p clipped to [0, 1]); k units clipped at 0 and
    normalised (uniform where a row sums to 0)."""
    if units == 1:
        p = g.op("Clip", [out, g.const(0.0), g.const(1.0)])
        q = g.op("Sub", [g.const(1.0), p])
        return g.op("Concat", [q, p], axis=1)
    clipped = g.op("Relu", [out])
    total = g.op("ReduceSum", [clipped, g.const([1], dtype=np.int64)], keepdims=1)
    ratio = g.op("Div", [clipped, total])
    return g.op("Where", [g.op("Greater", [total, g.const(0.0)]), ratio, g.const(1.0 / units)])


def _label_array(classes: list) -> np.ndarray:
    """Class labels as one ONNX tensor: int64 if all are integers, double if all are numbers, else strings."""
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return np.asarray(classes, dtype=np.int64)
    if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in classes):
        return np.asarray(classes, dtype=np.float64)
    return np.asarray([str(c) for c in classes], dtype=object)


def _labels(g: _Graph, out: str, units: int, classes: list) -> tuple[str, int]:
    """`trainyard.core.targets.decode` (argmax, or p > 0.5 for one unit) looked up in the class labels."""
    if units == 1:
        index = g.op("Cast", [g.op("Greater", [out, g.const(0.5)])], to=7)  # INT64
        index = g.op("Squeeze", [index, g.const([1], dtype=np.int64)])
    else:
        index = g.op("ArgMax", [out], axis=1, keepdims=0)
    labels = _label_array(classes)
    elem = {"i": 7, "f": 11}.get(labels.dtype.kind, 8)  # INT64, DOUBLE, STRING
    return g.op("Gather", [g.const(labels, "classes", dtype=labels.dtype), index], axis=0, output="predictions"), elem


def _outputs(g: _Graph, out: str, stack: DenseStack) -> list:
    """The predict API's fields as graph outputs: `predictions` and, for classifiers, `probabilities`."""
    from onnx import TensorProto, helper

    pre, units, rows = stack.preprocessing, stack.n_outputs, "n"
    if pre.task == "classification":
        probs = g.op("Cast", [_probabilities(g, out, units)], to=TensorProto.DOUBLE, output="probabilities")
        _, elem = _labels(g, out, units, list(pre.classes))
        return [helper.make_tensor_value_info("predictions", elem, [rows]),
                helper.make_tensor_value_info(probs, TensorProto.DOUBLE, [rows, len(pre.classes)])]
    values = g.op("Cast", [out], to=TensorProto.DOUBLE, stem="values")
    if units == 1:
        g.op("Squeeze", [values, g.const([1], dtype=np.int64)], output="predictions")
        return [helper.make_tensor_value_info("predictions", TensorProto.DOUBLE, [rows])]
    g.op("Identity", [values], output="predictions")
    return [helper.make_tensor_value_info("predictions", TensorProto.DOUBLE, [rows, units])]


def to_onnx(stack: DenseStack, name: str = "trainyard") -> bytes:
    """The serialised ONNX model of `stack` (checked by onnx.checker).

    Built in place in one ModelProto and serialised once, so the peak is about three times the
    weights (the stack, the proto, the bytes) where helper.make_graph / make_model would copy twice more.
    """
    import onnx
    from onnx import TensorProto, helper

    pre = stack.preprocessing
    model = onnx.ModelProto()
    model.ir_version, model.producer_name, model.graph.name = IR_VERSION, "trainyard", name
    model.doc_string = "raw feature rows in; predictions (and class probabilities) out"
    model.opset_import.append(helper.make_opsetid("", OPSET))
    g = _Graph(model, np.dtype(stack.dtype))
    x = "inputs"
    if pre.scaler is not None:
        x = g.op("Sub", [x, g.const(pre.offset, "offset", np.float64)])
        x = g.op("Div", [x, g.const(pre.scale, "scale", np.float64)], stem="scaled")
    if g.dtype != np.float64:
        x = g.op("Cast", [x], to=ONNX_TYPES[g.dtype])
    out = _layers(g, x, stack)
    model.graph.output.extend(_outputs(g, out, stack))
    model.graph.input.append(helper.make_tensor_value_info("inputs", TensorProto.DOUBLE, ["n", pre.n_features]))
    meta = {"task": pre.task, "classes": json.dumps(pre.classes), "feature_names": json.dumps(pre.feature_names),
            "target_names": json.dumps(pre.target_names), "backend": stack.source}
    helper.set_model_props(model, meta)
    data = model.SerializeToString()
    del model, g
    onnx.checker.check_model(data, full_check=True)
    return data
