"""ONNX graphs of a network, and of a model with its preprocessing (``pip install nnaccel[onnx]``).

ONNX takes rows as examples, so a layer is ``Gemm(rows, W, b, transB=1)`` = rows W^T + b with W
kept as nnaccel stores it, (p_i, p_{i-1}). Everything is float32 with a dynamic batch dimension.
The activations use nnaccel's own constants (``nnaccel.core.activations``), so onnxruntime computes
what ``predict_proba`` does.

- ``network_graph``: one input ``input`` (batch, n), one output ``output`` (batch, outputs), the
  output layer's activations (``predict_proba`` transposed).
- ``model_graph``: raw rows ``rows`` (batch, len(inputs)) through the file's standardisation and
  Playground features; a classifier gives ``probabilities`` (batch, classes), in the order of the
  class names recorded in the metadata, and ``label`` (batch,), the class names themselves; a
  regression model gives ``prediction`` (batch, outputs) in the label's units.
"""

from __future__ import annotations

import json
import os

import numpy as np

from ..core.activations import ELU_ALPHA, LEAKY_RELU_SLOPE, SELU_ALPHA, SELU_SCALE

# Opset 17 and IR version 8: what onnxruntime has run since 1.12, and most serving runtimes read.
OPSET = 17
IR_VERSION = 8
PRODUCER = "nnaccel"


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install 'nnaccel[onnx]' (or pip install onnx)") from None
    return onnx


class _Graph:
    """Nodes and constants of a graph under construction, with unique names."""

    def __init__(self):
        self.onnx = _onnx()
        self.nodes, self.initializers, self.count = [], [], 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def constant(self, stem: str, values, dtype=np.float32) -> str:
        name = self.name(stem)
        array = np.asarray(values, dtype=dtype) if dtype is not None else np.asarray(values)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, **attributes) -> str:
        output = output or self.name(op.lower())
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=self.name(f"{op}_node"), **attributes))
        return output


def _activation(graph: _Graph, value: str, activation: str, output: str | None = None) -> str:
    """``activation`` (a hidden activation or an output) applied to ``value`` (batch, p)."""
    if activation == "sigmoid":
        return graph.node("Sigmoid", [value], output)
    if activation == "tanh":
        return graph.node("Tanh", [value], output)
    if activation == "relu":
        return graph.node("Relu", [value], output)
    if activation == "leaky_relu":
        return graph.node("LeakyRelu", [value], output, alpha=LEAKY_RELU_SLOPE)
    if activation == "elu":
        return graph.node("Elu", [value], output, alpha=ELU_ALPHA)
    if activation == "selu":
        return graph.node("Selu", [value], output, alpha=SELU_ALPHA, gamma=SELU_SCALE)
    if activation == "softmax":
        return graph.node("Softmax", [value], output, axis=-1)
    if activation == "identity":
        return graph.node("Identity", [value], output) if output else value
    raise ValueError(f"no ONNX form for activation {activation!r}")


def _layers(graph: _Graph, value: str, architecture, params, output: str | None = None) -> str:
    """The network's layers on ``value`` (batch, n): its output layer's activations (batch, outputs)."""
    for index, (W, b) in enumerate(params):
        A = graph.node("Gemm", [value, graph.constant(f"W{index}", W), graph.constant(f"b{index}", np.reshape(b, -1))], transB=1)
        last = index == len(params) - 1
        value = _activation(graph, A, architecture.layer_activation(index), output if last else None)
    return value


def _features(graph: _Graph, value: str, features: list[str]) -> str:
    """The Playground features of the two columns of ``value`` (batch, 2): (batch, len(features))."""
    x1 = graph.node("Gather", [value, graph.constant("column", [0], np.int64)], axis=1)
    x2 = graph.node("Gather", [value, graph.constant("column", [1], np.int64)], axis=1)
    build = {
        "x1": lambda: x1,
        "x2": lambda: x2,
        "x1sq": lambda: graph.node("Mul", [x1, x1]),
        "x2sq": lambda: graph.node("Mul", [x2, x2]),
        "x1x2": lambda: graph.node("Mul", [x1, x2]),
        "sinx1": lambda: graph.node("Sin", [x1]),
        "sinx2": lambda: graph.node("Sin", [x2]),
    }
    columns = [build[name]() for name in features]
    return graph.node("Concat", columns, axis=1) if len(columns) > 1 else columns[0]


def _class_values(classes: list) -> np.ndarray:
    """The class names as an ONNX-ready array: text, int64 or float64."""
    if all(isinstance(value, str) for value in classes):
        return np.array(classes, dtype=object)
    if all(isinstance(value, int) and not isinstance(value, bool) for value in classes):
        return np.array(classes, dtype=np.int64)
    return np.array(classes, dtype=np.float64)


def _finish(graph: _Graph, inputs: list, outputs: list, metadata: dict, doc: str):
    onnx = graph.onnx
    body = onnx.helper.make_graph(graph.nodes, "nnaccel", inputs, outputs, initializer=graph.initializers, doc_string=doc)
    model = onnx.helper.make_model(body, opset_imports=[onnx.helper.make_opsetid("", OPSET)], producer_name=PRODUCER)
    model.ir_version = IR_VERSION
    from .. import __version__

    model.producer_version = __version__
    model.doc_string = doc
    onnx.helper.set_model_props(model, {key: json.dumps(value) for key, value in metadata.items()})
    onnx.checker.check_model(model, full_check=True)
    return model


def _network_metadata(architecture) -> dict:
    return {
        "nnaccel.layers": list(architecture.layers),
        "nnaccel.activations": list(architecture.activations),
        "nnaccel.output": architecture.output,
    }


def network_graph(architecture, params: list):
    """The ONNX ModelProto of a network with ``params`` [(W (p_i, p_{i-1}), b (p_i, 1))]: input
    ``input`` (batch, n) float32, output ``output`` (batch, outputs), the output activations."""
    onnx = _onnx()
    graph = _Graph()
    n, outputs = architecture.layers[0], architecture.layers[-1]
    _layers(graph, "input", architecture, params, "output")
    float32 = onnx.TensorProto.FLOAT
    return _finish(
        graph,
        [onnx.helper.make_tensor_value_info("input", float32, ["batch", n])],
        [onnx.helper.make_tensor_value_info("output", float32, ["batch", outputs])],
        _network_metadata(architecture),
        f"nnaccel network {'-'.join(map(str, architecture.layers))}: input (batch, {n}), one row per example; "
        f"output (batch, {outputs}), the {architecture.output} output layer's activations",
    )


def model_graph(architecture, params: list, pipeline):
    """The ONNX ModelProto of a network with its preprocessing ``pipeline`` (see the module's doc)."""
    onnx = _onnx()
    graph = _Graph()
    value = "rows"
    if pipeline.mean is not None:
        value = graph.node("Sub", [value, graph.constant("mean", pipeline.mean)])
        value = graph.node("Div", [value, graph.constant("scale", pipeline.scale)])
    if pipeline.features:
        value = _features(graph, value, pipeline.features)
    float32 = onnx.TensorProto.FLOAT
    metadata = {
        **_network_metadata(architecture),
        "nnaccel.inputs": list(pipeline.inputs),
        "nnaccel.features": pipeline.features,
        "nnaccel.task": pipeline.task,
    }
    if pipeline.task == "classification":
        H = _layers(graph, value, architecture, params)
        if architecture.output == "sigmoid":  # [1 - p, p], and class 1 where p >= 0.5, as nnaccel predict
            graph.node(  # the graph output "probabilities"
                "Concat", [graph.node("Sub", [graph.constant("one", [1.0]), H]), H], "probabilities", axis=1
            )
            index = graph.node(
                "Cast", [graph.node("GreaterOrEqual", [H, graph.constant("half", [0.5])])], to=onnx.TensorProto.INT64
            )
            index = graph.node("Squeeze", [index, graph.constant("axis", [1], np.int64)])
        else:
            graph.node("Identity", [H], "probabilities")  # a graph output of its own
            index = graph.node("ArgMax", [H], axis=1, keepdims=0)
        values = _class_values(pipeline.classes)
        graph.node("Gather", [graph.constant("classes", values, None), index], "label", axis=0)
        label_type = onnx.helper.np_dtype_to_tensor_dtype(values.dtype) if values.dtype != object else onnx.TensorProto.STRING
        outputs = [
            onnx.helper.make_tensor_value_info("probabilities", float32, ["batch", len(pipeline.classes)]),
            onnx.helper.make_tensor_value_info("label", label_type, ["batch"]),
        ]
        metadata["nnaccel.classes"] = list(pipeline.classes)
        described = (
            f"probabilities (batch, {len(pipeline.classes)}) of the classes in metadata nnaccel.classes, and label (batch,)"
        )
    else:
        H = _layers(graph, value, architecture, params)
        if pipeline.target_mean is not None:
            H = graph.node(
                "Add",
                [
                    graph.node("Mul", [H, graph.constant("target_scale", pipeline.target_scale)]),
                    graph.constant("target_mean", pipeline.target_mean),
                ],
            )
        graph.node("Identity", [H], "prediction")
        outputs = [onnx.helper.make_tensor_value_info("prediction", float32, ["batch", architecture.layers[-1]])]
        described = f"prediction (batch, {architecture.layers[-1]}) in the label's units"
    return _finish(
        graph,
        [onnx.helper.make_tensor_value_info("rows", float32, ["batch", len(pipeline.inputs)])],
        outputs,
        metadata,
        f"nnaccel model: rows (batch, {len(pipeline.inputs)}) of raw inputs {', '.join(pipeline.inputs)}, one row per "
        f"example, through the file's preprocessing and a {'-'.join(map(str, architecture.layers))} network; {described}",
    )


def write_onnx(path: str | os.PathLike, model) -> None:
    """Write the ModelProto ``model`` to ``path`` atomically."""
    from ..io import atomic_write

    payload = model.SerializeToString()
    atomic_write(path, lambda handle: handle.write(payload))
