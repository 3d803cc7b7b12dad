"""Trained models of peer libraries as nnaccel networks: ``Network.from_sklearn`` and
``Network.from_torch``.

Each function returns ``(layers, activations, output, params)`` for ``Network``, params as
[(W (p_i, p_{i-1}), b (p_i, 1))] float64 NumPy arrays; anything nnaccel cannot represent is refused
by name, before any network is built. scikit-learn stores ``coefs_[i]`` as (inputs, outputs), so W
is its transpose; ``torch.nn.Linear.weight`` is already (outputs, inputs). Neither library is
imported until one of these functions is called.
"""

from __future__ import annotations

import numpy as np

from ..core.activations import ELU_ALPHA, LEAKY_RELU_SLOPE

# scikit-learn's names for the activations nnaccel has
SKLEARN_HIDDEN = {"logistic": "sigmoid", "tanh": "tanh", "relu": "relu", "identity": "identity"}
SKLEARN_OUTPUT = {"logistic": "sigmoid", "softmax": "softmax", "identity": "identity"}


def from_sklearn(estimator) -> tuple[list[int], list[str], str, list]:
    """The layers, activations, output and parameters of a fitted ``MLPClassifier`` or ``MLPRegressor``."""
    kind = type(estimator).__name__
    if kind not in ("MLPClassifier", "MLPRegressor") or not type(estimator).__module__.startswith("sklearn."):
        raise TypeError(f"from_sklearn takes a fitted scikit-learn MLPClassifier or MLPRegressor; got {kind}")
    if not hasattr(estimator, "coefs_"):
        raise ValueError(f"this {kind} is not fitted; call its fit(X, y) first")
    hidden = SKLEARN_HIDDEN.get(estimator.activation)
    if hidden is None:
        raise ValueError(
            f"{kind}(activation={estimator.activation!r}) has no nnaccel equivalent; nnaccel has "
            f"{', '.join(SKLEARN_HIDDEN)} (as {', '.join(SKLEARN_HIDDEN.values())})"
        )
    output = SKLEARN_OUTPUT.get(estimator.out_activation_)
    if output is None:
        raise ValueError(
            f"{kind} has output activation {estimator.out_activation_!r} (from loss={getattr(estimator, 'loss', None)!r}), "
            f"which nnaccel cannot represent; nnaccel outputs are sigmoid, softmax and identity"
        )
    params = [
        (np.asarray(W, dtype=np.float64).T, np.asarray(b, dtype=np.float64).reshape(-1, 1))
        for W, b in zip(estimator.coefs_, estimator.intercepts_)
    ]
    layers = [params[0][0].shape[1]] + [W.shape[0] for W, _ in params]
    return layers, [hidden] * (len(layers) - 2), output, params


def _flatten(module) -> list:
    """The modules of a (possibly nested) ``torch.nn.Sequential``, in order."""
    import torch

    if isinstance(module, torch.nn.Sequential):
        return [leaf for child in module for leaf in _flatten(child)]
    return [module]


def _torch_activation(module, position: str) -> str | None:
    """nnaccel's name for a torch activation module (None for ``Identity``), or a ValueError."""
    import torch

    nn = torch.nn
    kind = type(module).__name__
    if isinstance(module, nn.Identity):
        return None
    if position == "output":
        if isinstance(module, nn.Sigmoid):
            return "sigmoid"
        if isinstance(module, nn.Softmax):
            if module.dim not in (1, -1, None):
                raise ValueError(f"Softmax(dim={module.dim}) is not over the features; nnaccel's softmax is Softmax(dim=1)")
            return "softmax"
        raise ValueError(
            f"the output layer's {kind} has no nnaccel equivalent; nnaccel outputs are Sigmoid, Softmax(dim=1) "
            "or none (identity)" + ("; for LogSoftmax use Softmax" if isinstance(module, nn.LogSoftmax) else "")
        )
    simple = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.ReLU: "relu", nn.SELU: "selu"}
    for torch_type, name in simple.items():
        if type(module) is torch_type:
            return name
    if type(module) is nn.LeakyReLU:
        if module.negative_slope != LEAKY_RELU_SLOPE:
            raise ValueError(
                f"LeakyReLU(negative_slope={module.negative_slope}): nnaccel's leaky_relu has slope {LEAKY_RELU_SLOPE}"
            )
        return "leaky_relu"
    if type(module) is nn.ELU:
        if module.alpha != ELU_ALPHA:
            raise ValueError(f"ELU(alpha={module.alpha}): nnaccel's elu has alpha {ELU_ALPHA}")
        return "elu"
    raise ValueError(
        f"{kind} has no nnaccel equivalent; from_torch takes Linear layers, each followed by at most one of "
        "Sigmoid, Tanh, ReLU, LeakyReLU(0.01), ELU(1.0), SELU or Identity (Sigmoid or Softmax(dim=1) after the last)"
    )


def from_torch(module) -> tuple[list[int], list[str], str, list]:
    """The layers, activations, output and parameters of a ``torch.nn.Sequential`` of ``Linear``
    layers and supported activations."""
    kind = type(module).__name__
    try:
        import torch
    except ImportError:
        raise TypeError(f"from_torch takes a torch.nn.Sequential; got {kind} (and torch is not installed)") from None
    if not isinstance(module, torch.nn.Sequential):
        raise TypeError(f"from_torch takes a torch.nn.Sequential of Linear layers and activations; got {kind}")
    modules = _flatten(module)
    linear = [index for index, child in enumerate(modules) if isinstance(child, torch.nn.Linear)]
    if not linear or linear[0] != 0:
        first = type(modules[0]).__name__ if modules else "nothing"
        raise ValueError(f"from_torch needs a Sequential that starts with a Linear layer; it starts with {first}")
    params: list[tuple[np.ndarray, np.ndarray]] = []
    activations: list[str] = []
    output = "identity"
    for number, start in enumerate(linear):
        layer = modules[start]
        stop = linear[number + 1] if number + 1 < len(linear) else len(modules)
        position = "output" if number == len(linear) - 1 else "hidden"
        found = [_torch_activation(child, position) for child in modules[start + 1 : stop]]
        names = [name for name in found if name is not None]
        if len(names) > 1:
            raise ValueError(f"Linear layer {number + 1} is followed by {len(names)} activations; nnaccel has one per layer")
        name = names[0] if names else "identity"
        if params and params[-1][0].shape[0] != layer.in_features:
            raise ValueError(
                f"Linear layer {number + 1} takes {layer.in_features} inputs but the layer before gives {params[-1][0].shape[0]}"
            )
        W = layer.weight.detach().cpu().to(torch.float64).numpy().copy()
        b = layer.bias.detach().cpu().to(torch.float64).numpy().copy() if layer.bias is not None else np.zeros(layer.out_features)
        params.append((W, b.reshape(-1, 1)))
        if position == "hidden":
            activations.append(name)
        else:
            output = name
    layers = [params[0][0].shape[1]] + [W.shape[0] for W, _ in params]
    return layers, activations, output, params


def peer_dtype(estimator_or_module) -> str | None:
    """float32 or float64: the dtype of a peer's parameters (None if neither)."""
    if hasattr(estimator_or_module, "coefs_"):
        kind = np.asarray(estimator_or_module.coefs_[0]).dtype
        return kind.name if kind.name in ("float32", "float64") else None
    parameters = getattr(estimator_or_module, "parameters", None)
    if parameters is not None:
        for parameter in parameters():
            name = str(parameter.dtype).replace("torch.", "")
            return name if name in ("float32", "float64") else "float32"
    return None
