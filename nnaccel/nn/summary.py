"""What a network or model file holds, as text: ``Network.summary()``, ``Model.summary()`` and
``nnaccel info --model FILE``."""

from __future__ import annotations

from .checkpoint import TRAINED_SETTINGS


def parameter_count(layers: list[int]) -> int:
    """Weights and biases of a fully connected network with these layer sizes."""
    return sum(fan_out * (fan_in + 1) for fan_in, fan_out in zip(layers[:-1], layers[1:]))


def network_lines(network) -> list[str]:
    """One line for the whole network, then one per layer with weights."""
    layers = network.layers
    lines = [
        f"network {'-'.join(map(str, layers))}: {parameter_count(layers):,} parameters, "
        f"{network.dtype.name}, {network.output} output, on the {network.backend.name} backend"
    ]
    for index, (fan_in, fan_out) in enumerate(zip(layers[:-1], layers[1:])):
        activation = network.architecture.layer_activation(index)
        kind = "output" if index == len(layers) - 2 else "hidden"
        lines.append(f"  layer {index + 1} ({kind}): {fan_in} -> {fan_out}, {activation}, {fan_out * (fan_in + 1):,} parameters")
    return lines


def _preprocessing_lines(pipeline) -> list[str]:
    lines = [f"task: {pipeline.task}"]
    lines.append(
        f"inputs ({len(pipeline.inputs)}): {', '.join(pipeline.inputs)}"
        + (f"; label column {pipeline.label!r}" if pipeline.label else "")
    )
    if pipeline.mean is not None:
        lines.append(
            "standardised with the training part's mean and standard deviation: "
            + ", ".join(
                f"{name} ({mean:.4g}, {scale:.4g})" for name, mean, scale in zip(pipeline.inputs, pipeline.mean, pipeline.scale)
            )
        )
    else:
        lines.append("inputs taken as they are (no standardisation)")
    if pipeline.features:
        lines.append(f"Playground features: {', '.join(pipeline.features)}")
    if pipeline.task == "classification":
        lines.append(f"classes ({len(pipeline.classes)}): {', '.join(map(str, pipeline.classes))}")
    elif pipeline.target_mean is not None:
        lines.append(
            "target standardised: "
            + ", ".join(f"({mean:.4g}, {scale:.4g})" for mean, scale in zip(pipeline.target_mean, pipeline.target_scale))
        )
    return lines


def _training_lines(training: dict | None, trained: dict | None) -> list[str]:
    record = dict(trained or {})
    if training is not None:
        record.setdefault("epochs_completed", training.get("epochs_completed"))
        record.update(
            {key: value for key, value in training.get("settings", {}).items() if key in TRAINING_SETTINGS and key not in record}
        )
        history = training.get("history")
        if isinstance(history, dict) and "best_epoch" in history:  # early stopping's best epoch so far
            record.setdefault("best_epoch", history["best_epoch"])
    shown = {key: value for key, value in record.items() if value is not None}
    if not shown:
        return ["trained by: not recorded in this file (Network.save keeps the network alone)"]
    return ["trained by: " + ", ".join(f"{key}={value}" for key, value in shown.items())]


# the settings of a checkpoint's training record worth showing: those a model file records, and
# the backend it ran on
TRAINING_SETTINGS = (*TRAINED_SETTINGS, "backend")


def model_summary(model) -> str:
    """The model's file, network, preprocessing and training, as lines of text."""
    lines = [f"model file {model.path}"] if model.path else []
    lines += network_lines(model.network)
    lines += _preprocessing_lines(model.pipeline)
    lines += _training_lines(model.training, model.trained)
    return "\n".join(lines)
