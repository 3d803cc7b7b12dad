"""Peers: the same network, data and update in PyTorch and scikit-learn, for side-by-side timing.

Both start from nnaccel's initial weights for the seed, use float32 and the same optimizer with
the same learning rate and hyperparameters, so their steps leave the same parameters as nnaccel's
(tests/test_bench_peers.py checks that), and their timings compare like for like.

- torch-cpu / torch-cuda: a hand-written step on tensors laid out as nnaccel's (X is (n, m), W is
  (p_i, p_{i-1})): forward with ``addmm``, the loss (sum over examples / m), gradients from
  autograd, then W -= lr * dW in place; with another optimizer, the matching ``torch.optim`` class
  (SGD with momentum or Nesterov, Adam, AdamW with the biases in a group without decay, as
  nnaccel's) steps instead. Data and parameters are on the device before timing.
- sklearn: ``MLPClassifier`` (``MLPRegressor`` for an identity output) with solver="sgd",
  momentum=0, alpha=0, batch_size=m and shuffle=False, so one ``partial_fit`` call is exactly one
  full-batch step. What is timed is that call, including scikit-learn's own input checks and loss
  bookkeeping, as a user calling it would pay. scikit-learn supports the logistic (sigmoid), tanh,
  relu and identity activations only, and uses one logistic unit, not a softmax, for two classes.
  With ``momentum``/``nesterov`` it runs solver="sgd" with that momentum, with ``adam``
  solver="adam" (where PyTorch's step adds eps sqrt(1 - beta2^t) to sqrt(v), scikit-learn adds
  eps: the parameters differ slightly while v is small); it has no AdamW.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from collections.abc import Callable

import numpy as np

from ..core.activations import ELU_ALPHA, LEAKY_RELU_SLOPE
from ..nn.initialization import initial_params
from ..optim import Adam, resolve_optimizer
from .runner_types import DTYPE, LEARNING_RATE, Runner, RunnerUnavailable, blas_threads, mini_batch_timed
from .spec import NetSpec

FIRST_CALL_ROWS = 64
SKLEARN_ACTIVATIONS = {"sigmoid": "logistic", "tanh": "tanh", "relu": "relu", "identity": "identity"}


def torch_runner(
    net: NetSpec,
    X: np.ndarray,
    Y: np.ndarray,
    seed: int = 0,
    device: str = "cpu",
    batch: int | None = None,
    optimizer: str = "sgd",
) -> Runner:
    """PyTorch training step for ``net`` on X (n, m), Y (outputs, m); device "cpu" or "cuda". With
    ``batch``: one epoch of mini-batch steps, in nnaccel's shuffled order of epoch 0, each batch
    gathered from the examples stored as rows (as a DataLoader batch is). ``optimizer``: a name of
    ``nnaccel.optim``, stepped by the matching ``torch.optim`` class (sgd: the hand-written step)."""
    if importlib.util.find_spec("torch") is None:
        raise RunnerUnavailable("PyTorch is not installed; install it with `pip install 'nnaccel[peers]'`")
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise RunnerUnavailable(f"this PyTorch ({torch.__version__}) sees no CUDA device")
    target = torch.device(device)
    params = [
        (torch.from_numpy(W).to(target).requires_grad_(), torch.from_numpy(b).to(target).requires_grad_())
        for W, b in initial_params(net.architecture(), seed, DTYPE)
    ]
    flat = [tensor for pair in params for tensor in pair]
    X_device = torch.from_numpy(np.ascontiguousarray(X, dtype=DTYPE)).to(target)
    Y_device = torch.from_numpy(np.ascontiguousarray(Y, dtype=DTYPE)).to(target)

    stepper = torch_optimizer(params, optimizer)

    def update(X, Y):
        loss = torch_loss(net, params, X, Y)
        grads = torch.autograd.grad(loss, flat)
        if stepper is not None:
            for tensor, gradient in zip(flat, grads):
                tensor.grad = gradient
            stepper.step()
            return
        with torch.no_grad():
            for tensor, gradient in zip(flat, grads):
                tensor.sub_(gradient, alpha=LEARNING_RATE)  # W -= lr * dW

    step: Callable[[], object]  # one timed call: a full-batch step, or every batch of an epoch
    if batch is None:
        step = functools.partial(update, X_device, Y_device)
        timed = (
            "one hand-written PyTorch step: forward, autograd backward, in-place W -= lr dW"
            if stepper is None
            else f"one PyTorch step: forward, autograd backward, torch.optim.{type(stepper).__name__}.step()"
        )
    else:
        from ..nn.training import epoch_order

        X_rows = X_device.t().contiguous()
        Y_rows = Y_device.t().contiguous()
        order = torch.from_numpy(epoch_order(seed, 0, X.shape[1])).to(target)
        batches = list(torch.split(order, batch))

        def step():
            for indices in batches:
                update(X_rows[indices].t(), Y_rows[indices].t())

        timed = (
            mini_batch_timed(batch, optimizer)
            + " (PyTorch autograd"
            + (")" if stepper is None else f", torch.optim.{type(stepper).__name__})")
        )

    on_gpu = device == "cuda"
    return Runner(
        name=f"torch-{device}",
        step=step,
        synchronize=torch.cuda.synchronize if on_gpu else (lambda: None),
        events="torch" if on_gpu else None,
        timed=timed,
        threads=None if on_gpu else torch.get_num_threads(),
        params=lambda: [tensor.detach().cpu().numpy().copy() for tensor in flat],
        keep=[params, X_device, Y_device, stepper],
    )


def torch_optimizer(params: list, optimizer: str):
    """The ``torch.optim`` object that updates [(W, b)] as nnaccel's ``optimizer`` does, with its
    defaults and the benchmark's learning rate; None for plain SGD (the hand-written step). AdamW
    decays the weights alone: nnaccel never decays biases."""
    import torch

    chosen = resolve_optimizer(optimizer)
    weights, biases = [W for W, _ in params], [b for _, b in params]
    if isinstance(chosen, Adam):
        kind = torch.optim.AdamW if chosen.name == "adamw" else torch.optim.Adam
        groups = [{"params": weights, "weight_decay": chosen.weight_decay}, {"params": biases, "weight_decay": 0.0}]
        return kind(groups, lr=LEARNING_RATE, betas=(chosen.beta1, chosen.beta2), eps=chosen.eps)
    if chosen.momentum:
        return torch.optim.SGD(weights + biases, lr=LEARNING_RATE, momentum=chosen.momentum, nesterov=chosen.nesterov)
    return None


def torch_loss(net: NetSpec, params: list, X, Y):
    """The mean loss over the m columns, as nnaccel defines it for each output layer."""
    import torch
    import torch.nn.functional as F

    m = X.shape[1]
    H = X
    for index, (W, b) in enumerate(params):
        A = torch.addmm(b, W, H)  # A = W H + b
        if index < len(params) - 1:
            H = _torch_activation(A, net.activation)
    if net.output == "sigmoid":
        return F.binary_cross_entropy_with_logits(A, Y, reduction="sum") / m
    if net.output == "softmax":
        return -(Y * torch.log_softmax(A, dim=0)).sum() / m
    return 0.5 * torch.sum((A - Y) ** 2) / m


def _torch_activation(A, name: str):
    import torch
    import torch.nn.functional as F

    if name == "sigmoid":
        return torch.sigmoid(A)
    if name == "tanh":
        return torch.tanh(A)
    if name == "relu":
        return torch.relu(A)
    if name == "leaky_relu":
        return F.leaky_relu(A, LEAKY_RELU_SLOPE)
    if name == "elu":
        return F.elu(A, ELU_ALPHA)
    if name == "selu":
        return F.selu(A)
    return A


def sklearn_runner(net: NetSpec, X: np.ndarray, Y: np.ndarray, seed: int = 0, optimizer: str = "sgd") -> Runner:
    """scikit-learn's MLP, one ``partial_fit`` over all m rows per step, from nnaccel's initial
    weights, with the solver of ``optimizer`` (none for adamw: RunnerUnavailable)."""
    if importlib.util.find_spec("sklearn") is None:
        raise RunnerUnavailable("scikit-learn is not installed; install it with `pip install 'nnaccel[bench]'`")
    model, rows, target, first_call = sklearn_model(net, X, Y, seed, optimizer)
    step = lambda: model.partial_fit(rows, target)  # noqa: E731 - the timed call, nothing else
    with warnings.catch_warnings():
        # A first call on a few rows creates the weights (replaced below) and the SGD state; it
        # warns that batch_size=m exceeds those few rows, which is expected.
        warnings.simplefilter("ignore")
        model.partial_fit(rows[:FIRST_CALL_ROWS], target[:FIRST_CALL_ROWS], **first_call)
    set_sklearn_params(model, initial_params(net.architecture(), seed, DTYPE))
    del model._optimizer  # the first timed call starts a fresh solver state (no momentum, Adam step 1), as the others do
    return Runner(
        name="sklearn",
        step=step,
        timed=f"one MLP partial_fit call with batch_size=m (one {'SGD' if optimizer == 'sgd' else optimizer} step), "
        "including its input checks",
        threads=blas_threads(),
        params=lambda: sklearn_params(model),
        keep=[model, rows, target],
    )


def sklearn_model(net: NetSpec, X: np.ndarray, Y: np.ndarray, seed: int = 0, optimizer: str = "sgd"):
    """(model, X as rows (m, n), target, first partial_fit keywords) for ``net`` and ``optimizer``."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    if net.activation not in SKLEARN_ACTIVATIONS:
        raise RunnerUnavailable(
            f"scikit-learn's MLP has no {net.activation!r} activation (it has logistic, tanh, relu, identity)"
        )
    if net.output == "softmax" and net.layers[-1] == 2:
        raise RunnerUnavailable("scikit-learn uses one logistic unit, not a 2-unit softmax, for two classes")
    m = X.shape[1]
    settings = dict(
        hidden_layer_sizes=tuple(net.layers[1:-1]),
        activation=SKLEARN_ACTIVATIONS[net.activation],
        learning_rate="constant",
        learning_rate_init=LEARNING_RATE,
        alpha=0.0,
        batch_size=m,
        shuffle=False,
        random_state=seed,
        **sklearn_solver(optimizer),
    )
    rows = np.ascontiguousarray(X.T, dtype=DTYPE)
    first_call = {}
    if net.output == "identity":
        model = MLPRegressor(**settings)
        target = Y[0].copy() if net.layers[-1] == 1 else np.ascontiguousarray(Y.T)
    else:
        model = MLPClassifier(**settings)
        if net.output == "softmax":
            target = np.argmax(Y, axis=0)
            first_call["classes"] = np.arange(net.layers[-1])
        elif net.layers[-1] == 1:
            target = Y[0].astype(np.int64)
            first_call["classes"] = np.array([0, 1])
        else:  # several sigmoid outputs: multilabel
            target = np.ascontiguousarray(Y.T.astype(np.int64))
            first_call["classes"] = np.arange(net.layers[-1])
    return model, rows, target, first_call


def sklearn_solver(optimizer: str) -> dict:
    """The MLP's solver arguments that update as nnaccel's ``optimizer`` does."""
    chosen = resolve_optimizer(optimizer)
    if chosen.name == "adamw":
        raise RunnerUnavailable("scikit-learn's MLP has no AdamW (decoupled weight decay)")
    if isinstance(chosen, Adam):
        return dict(solver="adam", beta_1=chosen.beta1, beta_2=chosen.beta2, epsilon=chosen.eps)
    return dict(solver="sgd", momentum=chosen.momentum, nesterovs_momentum=chosen.nesterov)


def set_sklearn_params(model, params) -> None:
    """Copy nnaccel params [(W (p_i, p_{i-1}), b (p_i, 1))] into a fitted scikit-learn MLP."""
    model.coefs_ = [np.ascontiguousarray(W.T, dtype=DTYPE) for W, _ in params]
    model.intercepts_ = [b.reshape(-1).astype(DTYPE) for _, b in params]


def sklearn_params(model) -> list[np.ndarray]:
    """A scikit-learn MLP's parameters in nnaccel's layout: [W1, b1, ...], W (p_i, p_{i-1}), b (p_i, 1)."""
    params = []
    for coefficients, intercepts in zip(model.coefs_, model.intercepts_):
        params += [coefficients.T.copy(), intercepts.reshape(-1, 1).copy()]
    return params
