"""Optimizers, schedules and early stopping against their oracles.

* Trajectories: PyTorch's ``torch.optim.SGD`` (dampening 0, momentum, Nesterov), ``Adam`` and
  ``AdamW`` from the same start, float64, with nnaccel's L2 (and L1) written into the torch loss
  so autograd adds l2 W + l1 sign(W) to the weights' gradient; biases in their own group without
  decay. Full batch and consecutive mini-batches (``shuffle=False``), several epochs, every
  backend and plan (Numba's fused epoch kernel and its layered steps, array-api-strict).
* Schedules: ``torch.optim.lr_scheduler``'s rates epoch by epoch, read from the history.
* Early stopping and resume: the best epoch recomputed from the history; a run split in two
  equals one uninterrupted run bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnaccel as nna
from nnaccel.backends.numba_backend import NumbaBackend
from nnaccel.nn.training import TrainingState
from nnaccel.optim import SGD, Adam, AdamW

torch = pytest.importorskip("torch")

OPTIMIZERS = {
    "sgd": (SGD(), torch.optim.SGD, {}),
    "momentum": (SGD(momentum=0.9), torch.optim.SGD, {"momentum": 0.9}),
    "nesterov": (SGD(momentum=0.8, nesterov=True), torch.optim.SGD, {"momentum": 0.8, "nesterov": True}),
    "adam": (Adam(beta1=0.8, beta2=0.99, eps=1e-7), torch.optim.Adam, {"betas": (0.8, 0.99), "eps": 1e-7}),
    "adamw": (AdamW(weight_decay=0.05), torch.optim.AdamW, {"weight_decay": 0.05}),
}
TORCH_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}


def torch_trajectory(params, X, Y, *, activation, output, optimizer, lr, l1, l2, epochs, batch):
    """The parameters after ``epochs`` passes of consecutive batches, trained by PyTorch."""
    _, torch_class, arguments = OPTIMIZERS[optimizer]
    arguments = dict(arguments)
    Ws = [torch.tensor(W, dtype=torch.float64, requires_grad=True) for W, _ in params]
    bs = [torch.tensor(b, dtype=torch.float64, requires_grad=True) for _, b in params]
    decay = arguments.pop("weight_decay", 0.0)  # AdamW's decoupled decay: weights only
    step = torch_class([{"params": Ws, "weight_decay": decay}, {"params": bs, "weight_decay": 0.0}], lr=lr, **arguments)
    X, Y = torch.tensor(X), torch.tensor(Y)
    m = X.shape[1]
    for _ in range(epochs):
        for start in range(0, m, batch or m):
            columns = slice(start, start + (batch or m))
            H = X[:, columns]
            for index, (W, b) in enumerate(zip(Ws, bs)):
                A = W @ H + b
                H = TORCH_ACTIVATIONS[activation](A) if index < len(Ws) - 1 else A
            target = Y[:, columns]
            if output == "sigmoid":
                loss = torch.nn.functional.binary_cross_entropy_with_logits(H, target, reduction="sum")
            elif output == "softmax":
                loss = -(target * torch.log_softmax(H, dim=0)).sum()
            else:
                loss = 0.5 * ((H - target) ** 2).sum()
            loss = loss / target.shape[1]
            loss = loss + sum(0.5 * l2 * (W**2).sum() + l1 * W.abs().sum() for W in Ws)
            step.zero_grad()
            loss.backward()
            step.step()
    return [(W.detach().numpy(), b.detach().numpy()) for W, b in zip(Ws, bs)]


def data(n: int, m: int, output: str, outputs: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, m))
    if output == "sigmoid":
        Y = (rng.random((outputs, m)) > 0.5).astype(float)
    elif output == "softmax":
        Y = np.eye(outputs)[rng.integers(0, outputs, m)].T.copy()
    else:
        Y = rng.normal(size=(outputs, m))
    return X, Y


def largest_relative_error(params, reference) -> float:
    errors = [
        np.max(np.abs(a - r) / np.maximum(np.abs(r), 1e-3))
        for pair, pair_ref in zip(params, reference)
        for a, r in zip(pair, pair_ref)
    ]
    return max(errors)


def backends_and_plans():
    """Every way a backend trains: NumPy, Numba's fused plan, Numba's layered plan (forced), the
    generic passes on array-api-strict, and CuPy on a GPU."""
    cases = [pytest.param("numpy", id="numpy")]
    if nna.backends.unavailable_reason("numba") is None:
        cases.append(pytest.param("numba", id="numba-fused"))
        cases.append(pytest.param("numba-layered", id="numba-layered"))
    cases.append(pytest.param("array-api", id="array-api-strict"))
    cases.append(pytest.param("cupy", id="cupy", marks=pytest.mark.gpu))  # the fused CUDA C updates
    return cases


def make_backend(name: str):
    if name == "numba-layered":
        return NumbaBackend(fused_max_width=0)
    if name == "array-api":
        strict = pytest.importorskip("array_api_strict")
        from nnaccel.backends.array_api_backend import ArrayApiBackend

        return ArrayApiBackend(strict)
    return name


@pytest.mark.parametrize("backend", backends_and_plans())
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("batch", [None, 8, 3], ids=["full", "batch8", "batch3"])
def test_trajectories_equal_pytorch(backend, optimizer, batch):
    X, Y = data(3, 40, "sigmoid", 1)
    network = nna.Network([3, 5, 4, 1], "tanh", "sigmoid", backend=make_backend(backend), dtype="float64", seed=3)
    start = network.get_params()
    network.fit(X, Y, epochs=4, lr=0.05, l2=0.01, batch_size=batch, shuffle=False, optimizer=OPTIMIZERS[optimizer][0])
    reference = torch_trajectory(
        start, X, Y, activation="tanh", output="sigmoid", optimizer=optimizer, lr=0.05, l1=0.0, l2=0.01, epochs=4, batch=batch
    )
    assert largest_relative_error(network.get_params(), reference) < 1e-8


@pytest.mark.parametrize("backend", backends_and_plans())
@pytest.mark.parametrize("optimizer", ["momentum", "adam", "adamw"])
@pytest.mark.parametrize("output,activation", [("softmax", "relu"), ("identity", "sigmoid")])
def test_trajectories_with_l1_and_other_outputs(backend, optimizer, output, activation):
    outputs = 3 if output == "softmax" else 2
    X, Y = data(4, 30, output, outputs, seed=1)
    network = nna.Network([4, 6, outputs], activation, output, backend=make_backend(backend), dtype="float64", seed=5)
    start = network.get_params()
    network.fit(X, Y, epochs=3, lr=0.02, l1=0.003, l2=0.002, batch_size=7, shuffle=False, optimizer=OPTIMIZERS[optimizer][0])
    reference = torch_trajectory(
        start, X, Y, activation=activation, output=output, optimizer=optimizer, lr=0.02, l1=0.003, l2=0.002, epochs=3, batch=7
    )
    assert largest_relative_error(network.get_params(), reference) < 1e-8


def test_the_names_build_the_contract_objects():
    assert nna.optim.resolve_optimizer("sgd") == SGD()
    assert nna.optim.resolve_optimizer("momentum") == SGD(momentum=0.9)
    assert nna.optim.resolve_optimizer("nesterov") == SGD(momentum=0.9, nesterov=True)
    assert nna.optim.resolve_optimizer("adam") == Adam(0.9, 0.999, 1e-8)
    assert nna.optim.resolve_optimizer("adamw") == AdamW(0.9, 0.999, 1e-8, 0.01)


def test_names_and_objects_train_alike():
    X, Y = data(2, 24, "sigmoid", 1)
    by_name = nna.Network([2, 4, 1], backend="numpy", dtype="float64")
    by_object = nna.Network([2, 4, 1], backend="numpy", dtype="float64")
    by_name.fit(X, Y, epochs=3, lr=0.01, batch_size=5, optimizer="adamw")
    by_object.fit(X, Y, epochs=3, lr=0.01, batch_size=5, optimizer=AdamW())
    for (W, b), (W_other, b_other) in zip(by_name.get_params(), by_object.get_params()):
        np.testing.assert_array_equal(W, W_other)
        np.testing.assert_array_equal(b, b_other)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_each_fit_starts_a_fresh_optimizer(backend):
    """Two fits of one epoch are not one fit of two: Adam's moments and step restart, as with a
    new torch optimizer."""
    X, Y = data(2, 24, "sigmoid", 1)
    split = nna.Network([2, 4, 1], backend=backend, dtype="float64")
    start = split.get_params()
    adam = OPTIMIZERS["adam"][0]
    split.fit(X, Y, epochs=1, lr=0.01, batch_size=6, shuffle=False, optimizer=adam)
    split.fit(X, Y, epochs=1, lr=0.01, batch_size=6, shuffle=False, optimizer=adam)
    restarted = torch_trajectory(
        start, X, Y, activation="tanh", output="sigmoid", optimizer="adam", lr=0.01, l1=0, l2=0, epochs=1, batch=6
    )
    restarted = torch_trajectory(
        restarted, X, Y, activation="tanh", output="sigmoid", optimizer="adam", lr=0.01, l1=0, l2=0, epochs=1, batch=6
    )
    assert largest_relative_error(split.get_params(), restarted) < 1e-8


# ----- schedules -------------------------------------------------------------------------------------
def torch_rates(make_scheduler, epochs: int, lr: float, metrics=None) -> list[float]:
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=lr)
    scheduler = make_scheduler(optimizer)
    rates = []
    for epoch in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step(metrics[epoch]) if metrics is not None else scheduler.step()
    return rates


SCHEDULES = {
    "step": ("step:3,0.5", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
    "exponential": ("exponential:0.8", lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.8)),
    "cosine": ("cosine:5,0.001", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=5, eta_min=0.001)),
    "cosine-run": ("cosine", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=12)),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedules_equal_pytorch_epoch_by_epoch(name):
    spec, make = SCHEDULES[name]
    X, Y = data(2, 20, "sigmoid", 1)
    network = nna.Network([2, 3, 1], backend="numpy", dtype="float64")
    history = network.fit(X, Y, epochs=12, lr=0.1, batch_size=5, lr_schedule=spec, optimizer="momentum")
    np.testing.assert_allclose(history["lr"], torch_rates(make, 12, 0.1), rtol=1e-12)


def test_plateau_schedule_equals_pytorch_on_the_validation_loss():
    X, Y = data(2, 40, "sigmoid", 1)
    Xv, Yv = data(2, 20, "sigmoid", 1, seed=9)  # labels unrelated to X: the validation loss stalls
    network = nna.Network([2, 8, 1], backend="numpy", dtype="float64")
    schedule = nna.optim.ReduceLROnPlateau(factor=0.5, patience=2, threshold=1e-3, cooldown=1)
    history = network.fit(X, Y, epochs=30, lr=0.5, batch_size=8, validation=(Xv, Yv), lr_schedule=schedule)
    expected = torch_rates(
        lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=2, threshold=1e-3, cooldown=1),
        30,
        0.5,
        history["val_loss"],
    )
    assert len(set(expected)) > 2  # the schedule did reduce the rate, more than once
    np.testing.assert_allclose(history["lr"], expected, rtol=1e-12)


def test_inverse_scaling_is_scikit_learns():
    X, Y = data(2, 30, "sigmoid", 1)
    network = nna.Network([2, 3, 1], backend="numpy", dtype="float64")
    history = network.fit(X, Y, epochs=5, lr=0.2, batch_size=10, lr_schedule=nna.optim.InverseScaling(power_t=0.25))
    # scikit-learn: learning_rate_init / (t + 1) ** power_t, t the samples seen before the epoch
    expected = [0.2 / (epoch * 30 + 1) ** 0.25 for epoch in range(5)]
    np.testing.assert_allclose(history["lr"], expected, rtol=1e-12)


def test_adaptive_divides_by_five_after_patience_and_ends_at_its_floor():
    schedule = nna.optim.Adaptive(patience=1, tol=0.1, min_lr=0.01)
    state = schedule.start(0.5, 100, 10)
    rates = []
    for epoch in range(12):
        rates.append(state.lr)
        schedule.after_epoch(state, epoch, 1.0)  # never improves after the first epoch
        if state.finished:
            break
    # scikit-learn: more than n_iter_no_change epochs without improvement -> lr / 5, stop at the floor
    assert rates[:3] == [0.5, 0.5, 0.5] and rates[3] == pytest.approx(0.1) and rates[5] == pytest.approx(0.02)
    assert state.finished and rates[-1] <= 0.01


@pytest.mark.parametrize(
    "spec,message",
    [
        ("warmup", "unknown lr_schedule 'warmup'"),
        ("step", "step_size"),
        ("step:0", "step_size must be a whole number >= 1"),
        ("exponential:x", "are numbers"),
        ("plateau:factor=2", "factor must be"),
        ("cosine:1,2,3", "at most 2"),
    ],
)
def test_bad_schedules_are_refused_before_any_work(spec, message):
    X, Y = data(2, 10, "sigmoid", 1)
    network = nna.Network([2, 3, 1], backend="numpy")
    before = network.get_params()
    with pytest.raises(ValueError, match=message):
        network.fit(X, Y, epochs=2, lr=0.1, lr_schedule=spec)
    for (W, b), (W_before, b_before) in zip(network.get_params(), before):
        np.testing.assert_array_equal(W, W_before)
        np.testing.assert_array_equal(b, b_before)


@pytest.mark.parametrize(
    "arguments,message",
    [
        ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'; expected one of sgd, momentum, nesterov, adam, adamw"),
        ({"optimizer": 3}, "unknown optimizer 3"),
        ({"early_stopping": 5}, "needs? validation|pass validation"),
        ({"early_stopping": 0, "validation": True}, "early_stopping .* >= 1"),
    ],
)
def test_bad_run_settings_are_refused_before_any_work(arguments, message):
    X, Y = data(2, 10, "sigmoid", 1)
    if arguments.get("validation") is True:
        arguments = dict(arguments, validation=(X, Y))
    network = nna.Network([2, 3, 1], backend="numpy")
    before = network.get_params()
    with pytest.raises(ValueError, match=message):
        network.fit(X, Y, epochs=2, lr=0.1, **arguments)
    for (W, b), (W_before, b_before) in zip(network.get_params(), before):
        np.testing.assert_array_equal(W, W_before)
        np.testing.assert_array_equal(b, b_before)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: SGD(momentum=-0.1), "momentum must be a finite number >= 0"),
        (lambda: SGD(nesterov=True), "Nesterov momentum needs a momentum > 0"),
        (lambda: Adam(beta1=1.0), r"beta1 must be a number in \[0, 1\)"),
        (lambda: Adam(beta2=-0.5), r"beta2 must be a number in \[0, 1\)"),
        (lambda: Adam(eps=0), "eps must be a finite number > 0"),
        (lambda: AdamW(weight_decay=-1), "weight_decay must be a finite number >= 0"),
    ],
)
def test_bad_optimizer_arguments_name_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ----- early stopping --------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_early_stopping_stops_after_patience_and_restores_the_best_epoch(backend):
    X, Y = data(2, 60, "sigmoid", 1)
    Xv, Yv = data(2, 30, "sigmoid", 1, seed=4)  # unrelated labels: the validation loss soon rises
    network = nna.Network([2, 16, 1], backend=backend, dtype="float64")
    history = network.fit(X, Y, epochs=500, lr=0.5, batch_size=6, validation=(Xv, Yv), early_stopping=4, optimizer="adam")
    val = history["val_loss"]
    best = int(np.argmin(val)) + 1
    assert history["best_epoch"] == best
    assert history["last_epoch"] == len(val) == best + 4 < 500  # stopped after 4 epochs without a lower loss
    assert all(value >= val[best - 1] for value in val[best:])
    assert network.loss(Xv, Yv) == pytest.approx(val[best - 1], rel=1e-12)  # the best epoch's parameters


def test_early_stopping_without_a_better_epoch_runs_to_the_end():
    X, Y = data(2, 40, "sigmoid", 1)
    network = nna.Network([2, 4, 1], backend="numpy", dtype="float64")
    history = network.fit(X, Y, epochs=15, lr=0.05, validation=(X, Y), early_stopping=3)
    assert history["last_epoch"] == 15 and history["best_epoch"] == 15  # full-batch GD keeps lowering the loss


# ----- every data path -------------------------------------------------------------------------------
@pytest.mark.parametrize("batch", [None, 10])
def test_streamed_training_with_adam_equals_in_memory(tmp_path, batch):
    X, Y = data(3, 50, "sigmoid", 1)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)
    in_memory = nna.Network([3, 4, 1], backend="numpy", dtype="float64")
    streamed = nna.Network([3, 4, 1], backend="numpy", dtype="float64")
    in_memory.fit(X, Y, epochs=3, lr=0.01, batch_size=batch, shuffle=False, optimizer="adam", lr_schedule="exponential:0.9")
    streamed.fit(
        str(tmp_path / "X.npy"),
        str(tmp_path / "Y.npy"),
        epochs=3,
        lr=0.01,
        batch_size=batch,
        shuffle=False,
        optimizer="adam",
        lr_schedule="exponential:0.9",
    )
    assert largest_relative_error(streamed.get_params(), in_memory.get_params()) < 1e-10


@pytest.mark.slow
def test_dask_training_with_momentum_equals_in_memory():
    pytest.importorskip("distributed")
    from nnaccel.distributed import fit as dask_fit

    X, Y = data(3, 64, "sigmoid", 1)
    in_memory = nna.Network([3, 4, 1], backend="numpy", dtype="float64")
    on_dask = nna.Network([3, 4, 1], backend="numpy", dtype="float64")
    in_memory.fit(X, Y, epochs=3, lr=0.1, optimizer="nesterov", lr_schedule="step:2,0.5")
    history = dask_fit(
        on_dask,
        X,
        Y,
        epochs=3,
        lr=0.1,
        optimizer="nesterov",
        lr_schedule="step:2,0.5",
        scheduler="local",
        workers=1,
        worker_backend="numpy",
    )
    assert history["lr"] == [0.1, 0.1, 0.05]
    assert largest_relative_error(on_dask.get_params(), in_memory.get_params()) < 1e-10


# ----- resume ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("batch", [None, 7])
def test_a_run_resumed_from_its_state_is_bit_identical(backend, batch):
    X, Y = data(3, 40, "sigmoid", 1)
    Xv, Yv = data(3, 20, "sigmoid", 1, seed=2)
    settings = dict(
        lr=0.05, batch_size=batch, optimizer="adam", lr_schedule="plateau:0.5,1", validation=(Xv, Yv), early_stopping=50, seed=3
    )
    whole = nna.Network([3, 5, 1], backend=backend, dtype="float32")
    whole_history = whole.fit(X, Y, epochs=8, **settings)

    first = nna.Network([3, 5, 1], backend=backend, dtype="float32")
    state = TrainingState()
    history = first.fit(X, Y, epochs=4, state=state, **settings)
    state.capture_optimizer()
    saved_params = first.get_params()
    second = nna.Network([3, 5, 1], backend=backend, dtype="float32")
    second.set_params(saved_params)  # a fresh process: only the saved numbers carry over
    resumed = TrainingState(optimizer=state.optimizer, schedule=state.schedule, stopping=state.stopping)
    second.fit(X, Y, epochs=8, start_epoch=4, history=history, state=resumed, **settings)
    assert history["loss"] == whole_history["loss"] and history["lr"] == whole_history["lr"]
    for (W, b), (W_whole, b_whole) in zip(second.get_params(), whole.get_params()):
        np.testing.assert_array_equal(W, W_whole)
        np.testing.assert_array_equal(b, b_whole)


def test_an_interrupted_epoch_leaves_the_optimizer_at_its_start():
    X, Y = data(2, 30, "sigmoid", 1)
    network = nna.Network([2, 4, 1], backend="numpy", dtype="float64")
    state = TrainingState()

    def interrupt(epoch, history):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(nna.TrainingInterrupted) as stopped:
        network.fit(X, Y, epochs=5, lr=0.01, batch_size=6, optimizer="adam", state=state, on_epoch_end=interrupt)
    assert stopped.value.epoch == 2
    steps = state.capture_optimizer().step
    assert steps == 2 * math.ceil(30 / 6)  # two whole epochs of updates, nothing of a third


@pytest.mark.parametrize("optimizer", ["nesterov", "adamw"])
def test_a_wide_networks_parallel_update_equals_numpy_for_any_thread_count(optimizer):
    """Above numba_plans.PARALLEL_UPDATE parameters the layered plan updates in parallel tiles."""
    numba = pytest.importorskip("numba")
    from nnaccel.backends.numba_plans import PARALLEL_UPDATE

    layers = [300, 256, 3]
    assert 300 * 256 + 256 * 3 >= PARALLEL_UPDATE
    X, Y = data(300, 40, "softmax", 3)
    results = []
    for backend, threads in (("numpy", None), ("numba", 1), ("numba", numba.config.NUMBA_NUM_THREADS)):
        network = nna.Network(layers, "relu", "softmax", backend=backend, dtype="float64", seed=2)
        if threads is not None:
            numba.set_num_threads(threads)
        try:
            network.fit(X, Y, epochs=2, lr=0.01, l2=0.001, batch_size=8, shuffle=False, optimizer=optimizer)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        results.append(network.get_params())
    assert largest_relative_error(results[1], results[0]) < 1e-9
    for (W, b), (W_other, b_other) in zip(results[1], results[2]):
        np.testing.assert_array_equal(W, W_other)
        np.testing.assert_array_equal(b, b_other)
