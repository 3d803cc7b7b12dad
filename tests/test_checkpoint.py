"""Checkpoints: written atomically every N epochs, on Ctrl-C and on SIGTERM; ``--resume`` ends with
exactly the parameters of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from support import cli

import nnaccel as nna
from nnaccel.cli import train as train_command
from nnaccel.nn import checkpoint

RUN = [
    "--backend",
    "numpy",
    "--dataset",
    "xor",
    "--noise",
    "10",
    "--hidden",
    "6,4",
    "--lr",
    "0.1",
    "--batch-size",
    "8",
    "--epochs",
    "12",
    "--seed",
    "5",
    "--quiet",
]


def params_of(path) -> list:
    return nna.Network.load(path, backend="numpy").get_params()


def assert_identical(first_path, second_path):
    for (W1, b1), (W2, b2) in zip(params_of(first_path), params_of(second_path)):
        np.testing.assert_array_equal(W1, W2)
        np.testing.assert_array_equal(b1, b2)


@pytest.fixture
def uninterrupted(tmp_path):
    """The reference: the whole run in one go, its model and its JSON report."""
    code, _, err = cli("train", *RUN, "--save", tmp_path / "whole.npz", "--json", tmp_path / "whole.json")
    assert code == 0, err
    return tmp_path / "whole.npz", json.loads((tmp_path / "whole.json").read_text())


def test_checkpoint_every_n_epochs_and_at_the_end(tmp_path, monkeypatch):
    written = []
    original = checkpoint.save

    def spy(path, network, **records):
        written.append(records["training"]["epochs_completed"])
        original(path, network, **records)

    monkeypatch.setattr(checkpoint, "save", spy)
    code, _, err = cli("train", *RUN, "--checkpoint", tmp_path / "ck.npz", "--checkpoint-every", "5")
    assert code == 0, err
    assert written == [5, 10, 12]
    saved = checkpoint.load(tmp_path / "ck.npz", backend="numpy", checkpoint=True)
    assert saved.training["epochs_completed"] == 12 and len(saved.training["history"]["loss"]) == 12
    settings = saved.training["settings"]
    assert (settings["lr"], settings["batch_size"], settings["seed"], settings["hidden"], settings["noise"]) == (
        0.1,
        8,
        5,
        [6, 4],
        10.0,
    )
    assert saved.pipeline["features"] == ["x1", "x2"]
    assert [path.name for path in tmp_path.iterdir()] == ["ck.npz"]  # no temporary files left


def test_resume_after_an_interrupt_mid_epoch_is_exact(tmp_path, monkeypatch, uninterrupted):
    """SIGINT in the middle of epoch 8's updates: the state of epoch 8's start is saved."""
    whole, report = uninterrupted
    from nnaccel.backends.numpy_backend import NumpyBackend

    steps_per_epoch = 250 // 8 + 1  # 500 points, half for training, batches of 8
    calls = {"count": 0}
    update = NumpyBackend.update

    def interrupting_update(self, *arguments, **keywords):
        calls["count"] += 1
        if calls["count"] == (7 * steps_per_epoch + 10) * 2 * 3:  # (W, b) for each of 3 layers per step
            signal.raise_signal(signal.SIGINT)
        return update(self, *arguments, **keywords)

    monkeypatch.setattr(NumpyBackend, "update", interrupting_update)
    ck = tmp_path / "ck.npz"
    code, _, err = cli("train", *RUN, "--checkpoint", ck, "--checkpoint-every", "100", "--save", tmp_path / "never.npz")
    monkeypatch.setattr(NumpyBackend, "update", update)
    assert code == 128 + signal.SIGINT, err
    assert f"Resume with: nnaccel train --resume {ck}" in err and "SIGINT" in err and "Traceback" not in err
    assert not (tmp_path / "never.npz").exists()
    saved = checkpoint.load(ck, backend="numpy", checkpoint=True)
    assert saved.training["epochs_completed"] == 7
    assert saved.training["history"]["loss"] == report["history"]["train_loss"][:7]

    code, _, err = cli("train", "--resume", ck, "--json", tmp_path / "resumed.json")
    assert code == 0, err
    assert_identical(whole, tmp_path / "never.npz")  # the original --save is carried by the checkpoint
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    assert resumed["history"] == report["history"]


def test_resume_after_an_interrupt_at_an_epoch_end_is_exact(tmp_path, monkeypatch, uninterrupted):
    """SIGINT while the epoch's bookkeeping runs: the finished epoch is kept."""
    whole, _ = uninterrupted
    update = train_command.Progress.update

    def interrupting_update(self, epoch, history):
        update(self, epoch, history)
        if epoch == 3:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(train_command.Progress, "update", interrupting_update)
    ck = tmp_path / "ck.npz"
    code, _, err = cli("train", *RUN, "--checkpoint", ck)
    monkeypatch.setattr(train_command.Progress, "update", update)
    assert code == 130, err
    assert checkpoint.load(ck, backend="numpy", checkpoint=True).training["epochs_completed"] == 4
    code, _, err = cli("train", "--resume", ck, "--save", tmp_path / "resumed.npz")
    assert code == 0, err
    assert_identical(whole, tmp_path / "resumed.npz")


def test_interrupt_between_epochs_keeps_the_last_checkpoint(tmp_path, monkeypatch, uninterrupted):
    """SIGTERM during the divergence check between two epochs: whatever fit makes of it, the message
    names a checkpoint that resumes exactly."""
    whole, _ = uninterrupted
    from nnaccel.backends.numpy_backend import NumpyBackend

    all_finite = NumpyBackend.all_finite
    calls = {"count": 0}

    def interrupting_all_finite(self, *arguments, **keywords):
        calls["count"] += 1
        if calls["count"] == 20:
            signal.raise_signal(signal.SIGTERM)
        return all_finite(self, *arguments, **keywords)

    monkeypatch.setattr(NumpyBackend, "all_finite", interrupting_all_finite)
    ck = tmp_path / "ck.npz"
    code, _, err = cli("train", *RUN, "--checkpoint", ck, "--checkpoint-every", "1")
    monkeypatch.setattr(NumpyBackend, "all_finite", all_finite)
    assert calls["count"] >= 20 and code == 128 + signal.SIGTERM, err
    assert f"Resume with: nnaccel train --resume {ck}" in err and "Traceback" not in err
    code, _, err = cli("train", "--resume", ck, "--save", tmp_path / "resumed.npz")
    assert code == 0, err
    assert_identical(whole, tmp_path / "resumed.npz")


def test_resume_extends_a_finished_run(tmp_path, uninterrupted):
    whole, _ = uninterrupted
    ck = tmp_path / "ck.npz"
    half = [argument if argument != "12" else "5" for argument in RUN]
    code, _, err = cli("train", *half, "--checkpoint", ck)
    assert code == 0, err
    code, _, err = cli("train", "--resume", ck, "--epochs", "12", "--save", tmp_path / "more.npz")
    assert code == 0, err
    assert_identical(whole, tmp_path / "more.npz")


def test_resume_with_user_data_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 90))
    data = tmp_path / "d.csv"
    data.write_text("a,b,c,y\n" + "".join(f"{a},{b},{c},{int(a * b > 0)}\n" for a, b, c in X.T))
    common = ["--backend", "numpy", "--data", data, "--hidden", "5", "--lr", "0.2", "--quiet"]
    code, _, err = cli("train", *common, "--epochs", "9", "--save", tmp_path / "whole.npz")
    assert code == 0, err
    code, _, err = cli("train", *common, "--epochs", "4", "--checkpoint", tmp_path / "ck.npz")
    assert code == 0, err
    code, _, err = cli("train", "--resume", tmp_path / "ck.npz", "--epochs", "9", "--save", tmp_path / "resumed.npz")
    assert code == 0, err
    assert_identical(tmp_path / "whole.npz", tmp_path / "resumed.npz")
    # the data file changed under the checkpoint: refused
    data.write_text(data.read_text() + "0,0,0,1\n")
    code, _, err = cli("train", "--resume", tmp_path / "ck.npz", "--epochs", "9")
    assert code == 2 and "changed since the checkpoint" in err


def test_resume_refuses_other_hyperparameters_and_non_checkpoints(tmp_path):
    ck = tmp_path / "ck.npz"
    code, _, err = cli("train", *RUN, "--checkpoint", ck, "--save", tmp_path / "model.npz")
    assert code == 0, err
    code, _, err = cli("train", "--resume", ck, "--lr", "0.5")
    assert code == 2 and "--lr cannot change when resuming" in err
    code, _, err = cli("train", "--resume", tmp_path / "model.npz")
    assert code == 2 and "not a checkpoint" in err
    code, _, err = cli("train", "--resume", ck, "--epochs", "3")
    assert code == 2 and "less than the 12 epochs" in err


def test_a_checkpoint_is_a_model_file(tmp_path):
    ck = tmp_path / "ck.npz"
    code, _, err = cli("train", *RUN, "--checkpoint", ck, "--save", tmp_path / "model.npz")
    assert code == 0, err
    assert_identical(ck, tmp_path / "model.npz")
    points = tmp_path / "p.csv"
    points.write_text("x1,x2\n1,1\n-2,3\n")
    from_checkpoint = cli("predict", "--model", ck, "--data", points, "--backend", "numpy")
    assert from_checkpoint[0] == 0
    assert from_checkpoint[1] == cli("predict", "--model", tmp_path / "model.npz", "--data", points, "--backend", "numpy")[1]


# ----- real signals, to a real process --------------------------------------------------------------
SLOW_RUN = [
    "--backend",
    "numpy",
    "--dataset",
    "spiral",
    "--samples",
    "1000",
    "--hidden",
    "8,8",
    "--batch-size",
    "1",
    "--epochs",
    "15",
    "--features",
    "x1,x2,sinx1,sinx2",
    "--seed",
    "2",
    "--quiet",
]


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_signal_during_training_saves_a_checkpoint_that_resumes_exactly(tmp_path, signal_name):
    ck = tmp_path / "ck.npz"
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "nnaccel", "train", *SLOW_RUN, "--checkpoint", ck, "--checkpoint-every", "1"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    deadline = time.monotonic() + 120
    while not ck.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # the first checkpoint means training is under way
    assert process.poll() is None, process.communicate()
    time.sleep(0.05)
    process.send_signal(getattr(signal, signal_name))
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + getattr(signal, signal_name), (out, err)
    assert signal_name in err and f"Resume with: nnaccel train --resume {ck}" in err and "Traceback" not in err, err
    completed = checkpoint.load(ck, backend="numpy", checkpoint=True).training["epochs_completed"]
    assert 1 <= completed < 15, err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ck.npz"], err  # no temporary file left behind

    code, _, error = cli("train", "--resume", ck, "--save", tmp_path / "resumed.npz")
    assert code == 0, error
    code, _, error = cli("train", *SLOW_RUN, "--save", tmp_path / "whole.npz")
    assert code == 0, error
    assert_identical(tmp_path / "whole.npz", tmp_path / "resumed.npz")


def test_interrupt_without_checkpoint_flag_saves_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nnaccel-checkpoint.npz").write_bytes(b"someone else's file")
    update = train_command.Progress.update

    def interrupting_update(self, epoch, history):
        update(self, epoch, history)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(train_command.Progress, "update", interrupting_update)
    code, _, err = cli("train", *RUN)
    assert code == 130
    assert (tmp_path / "nnaccel-checkpoint.npz").read_bytes() == b"someone else's file"
    saved = tmp_path / "nnaccel-checkpoint-2.npz"
    assert f"--resume {saved}" in err
    assert checkpoint.load(saved, backend="numpy", checkpoint=True).training["epochs_completed"] == 1


def test_resume_checkpoints_into_the_file_resumed_not_the_stored_path(tmp_path, uninterrupted):
    whole, _ = uninterrupted
    (tmp_path / "gone").mkdir()
    original = tmp_path / "gone" / "ck.npz"
    half = [argument if argument != "12" else "5" for argument in RUN]
    code, _, err = cli("train", *half, "--checkpoint", original)
    assert code == 0, err
    copy = tmp_path / "B.npz"
    copy.write_bytes(original.read_bytes())
    original.unlink()
    (tmp_path / "gone").rmdir()
    code, _, err = cli("train", "--resume", copy, "--epochs", "12")
    assert code == 0, err
    assert not (tmp_path / "gone").exists()
    assert checkpoint.load(copy, backend="numpy", checkpoint=True).training["epochs_completed"] == 12
    assert_identical(whole, copy)


@pytest.mark.parametrize("damage", ["settings", "history", "epochs_completed", "lr", "lr-text", "loss"])
def test_a_damaged_checkpoint_is_one_line(tmp_path, damage):
    ck = tmp_path / "ck.npz"
    code, _, err = cli("train", *RUN, "--epochs", "2", "--checkpoint", ck)
    assert code == 0, err
    saved = checkpoint.load(ck, backend="numpy", checkpoint=True)
    training = {key: value for key, value in saved.training.items() if key not in ("format", "version")}
    if damage in ("settings", "history", "epochs_completed"):
        del training[damage]
    elif damage == "loss":
        training["history"] = {"loss": 3}
    else:
        training["settings"] = {**training["settings"], "lr": -1.0 if damage == "lr" else "fast"}
    checkpoint.save(tmp_path / "bad.npz", saved.network, pipeline=saved.pipeline, training=training)
    code, _, err = cli("train", "--resume", tmp_path / "bad.npz", "--epochs", "4")
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and ("bad.npz" in err or "--lr" in err), err


# ----- the optimizer's, the schedule's and early stopping's state ----------------------------------
STATEFUL = [
    "--dataset",
    "xor",
    "--noise",
    "30",
    "--samples",
    "200",
    "--hidden",
    "6,4",
    "--optimizer",
    "adam",
    "--seed",
    "5",
    "--quiet",
]
SCENARIOS = {
    "adam-cosine": [*STATEFUL, "--lr", "0.02", "--lr-schedule", "cosine", "--epochs", "12"],
    "early-stopping": [*STATEFUL, "--lr", "0.05", "--early-stopping", "3", "--epochs", "40"],
}


def stateful_run(backend, batch, scenario) -> list:
    return ["--backend", backend, "--batch-size", batch, *SCENARIOS[scenario]]


def whole_run(tmp_path, arguments) -> dict:
    """The uninterrupted reference run: its model in whole.npz, its JSON report returned."""
    code, _, err = cli("train", *arguments, "--save", tmp_path / "whole.npz", "--json", tmp_path / "whole.json")
    assert code == 0, err
    return json.loads((tmp_path / "whole.json").read_text())


def interrupt_inside_epoch(monkeypatch, epoch: int) -> None:
    """SIGINT once epoch ``epoch`` (from 0) has run all its updates, before fit records it: fit
    must put the parameters and the optimizer's state back to that epoch's start."""
    from nnaccel.nn import training

    original = training._in_memory_epochs

    def wrapped(*arguments, **keywords):
        plan, run_epoch = original(*arguments, **keywords)

        def interrupted(number, hyper):
            result = run_epoch(number, hyper)
            if number == epoch:
                signal.raise_signal(signal.SIGINT)
            return result

        return plan, interrupted

    monkeypatch.setattr(training, "_in_memory_epochs", wrapped)


def resume_and_compare(tmp_path, ck, report) -> dict:
    code, _, err = cli("train", "--resume", ck, "--save", tmp_path / "resumed.npz", "--json", tmp_path / "resumed.json")
    assert code == 0, err
    assert_identical(tmp_path / "whole.npz", tmp_path / "resumed.npz")
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    assert resumed["history"] == report["history"]  # losses, rates, best and last epoch
    return resumed


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("batch", ["0", "8"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_resume_with_optimizer_state_is_bit_identical(tmp_path, monkeypatch, backend, batch, scenario):
    if backend == "numba":
        pytest.importorskip("numba")
    arguments = stateful_run(backend, batch, scenario)
    report = whole_run(tmp_path, arguments)
    last = report["metrics"]["last_epoch"]
    # early stopping: interrupted two epochs before it stops, with epochs since the best to carry
    epoch = last - 2 if scenario == "early-stopping" else 6
    if scenario == "early-stopping":
        assert last < 40 and report["history"]["best_epoch"] < epoch, report["history"]
    else:
        lr = report["history"]["lr"]
        assert len(set(lr)) == 12 and lr[0] == 0.02 and lr == sorted(lr, reverse=True)  # cosine, from --lr
    ck = tmp_path / "ck.npz"
    interrupt_inside_epoch(monkeypatch, epoch)
    code, _, err = cli("train", *arguments, "--checkpoint", ck, "--checkpoint-every", "100")
    monkeypatch.undo()
    assert code == 128 + signal.SIGINT, err
    saved = checkpoint.load(ck, backend="numpy", checkpoint=True)
    assert saved.training["epochs_completed"] == epoch
    updates_per_epoch = 1 if batch == "0" else -(-100 // 8)  # 200 samples, half for training
    assert saved.state.optimizer.step == epoch * updates_per_epoch
    assert len(saved.state.optimizer.first) == len(saved.state.optimizer.second) == 3
    assert any(np.any(W != 0) for W, _ in saved.state.optimizer.second)
    if scenario == "early-stopping":
        assert saved.state.stopping.bad_epochs == epoch - report["history"]["best_epoch"]
        assert len(saved.state.stopping.best_params) == 3
    else:
        assert saved.state.schedule.lr == report["history"]["lr"][epoch]  # the rate of the next epoch
    resume_and_compare(tmp_path, ck, report)


def test_resume_of_a_run_interrupted_as_early_stopping_ends_it(tmp_path, monkeypatch):
    """SIGINT at the end of the epoch that stops training: the checkpoint says the run has ended,
    and resuming it trains nothing but ends with the best epoch's parameters."""
    arguments = stateful_run("numpy", "8", "early-stopping")
    report = whole_run(tmp_path, arguments)
    last = report["metrics"]["last_epoch"]
    update = train_command.Progress.update

    def interrupting_update(self, epoch, history):
        update(self, epoch, history)
        if epoch + 1 == last:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(train_command.Progress, "update", interrupting_update)
    ck = tmp_path / "ck.npz"
    code, _, err = cli("train", *arguments, "--checkpoint", ck)
    monkeypatch.undo()
    assert code == 130, err
    saved = checkpoint.load(ck, backend="numpy", checkpoint=True)
    assert saved.training["stopped"] is True and saved.training["epochs_completed"] == last
    resumed = resume_and_compare(tmp_path, ck, report)
    assert resumed["metrics"]["epochs_this_run"] == 0
    code, _, err = cli("train", "--resume", ck, "--epochs", "60")
    assert code == 2 and "ended itself" in err and "bad" not in err


def test_a_finished_early_stopping_run_holds_its_best_epoch(tmp_path):
    arguments = stateful_run("numpy", "8", "early-stopping")
    ck = tmp_path / "ck.npz"
    code, _, err = cli("train", *arguments, "--checkpoint", ck, "--save", tmp_path / "model.npz", "--json", tmp_path / "r.json")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    saved = checkpoint.load(ck, backend="numpy", checkpoint=True)
    assert saved.training["epochs_completed"] == report["metrics"]["last_epoch"] < 40
    assert_identical(ck, tmp_path / "model.npz")
    for (W, b), (W_best, b_best) in zip(params_of(ck), saved.state.stopping.best_params):
        np.testing.assert_array_equal(W, W_best)
        np.testing.assert_array_equal(b, b_best)


def rewrite_archive(source, target, drop=(), training=None, arrays=None) -> None:
    """A copy of the .npz ``source`` without the entries ``drop``, with another training record and
    further (or replaced) arrays."""
    with np.load(source) as archive:
        entries = {name: archive[name] for name in archive.files if name not in drop}
    if training is not None:
        entries["training"] = np.array(json.dumps(training))
    entries.update(arrays or {})
    np.savez(target, **entries)


def training_record(path) -> dict:
    with np.load(path) as archive:
        return json.loads(str(archive["training"]))


def test_a_checkpoint_of_format_1_without_optimizer_state_still_resumes(tmp_path, uninterrupted):
    whole, report = uninterrupted
    ck = tmp_path / "ck.npz"
    half = [argument if argument != "12" else "5" for argument in RUN]
    code, _, err = cli("train", *half, "--checkpoint", ck)
    assert code == 0, err
    record = training_record(ck)
    # what nnaccel wrote before optimizers: no state, no rates, none of the new settings
    record["version"] = 1
    del record["state"], record["history"]["lr"]
    for name in train_command.ADDED_SETTINGS:
        del record["settings"][name]
    old = tmp_path / "old.npz"
    rewrite_archive(ck, old, training=record)
    code, _, err = cli(
        "train", "--resume", old, "--epochs", "12", "--save", tmp_path / "resumed.npz", "--json", tmp_path / "resumed.json"
    )
    assert code == 0, err
    assert_identical(whole, tmp_path / "resumed.npz")
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    assert resumed["history"]["train_loss"] == report["history"]["train_loss"]
    assert resumed["history"]["lr"] == [0.1] * 12 and resumed["settings"]["optimizer"] == "sgd"


@pytest.fixture
def adam_checkpoint(tmp_path):
    ck = tmp_path / "ck.npz"
    code, _, err = cli("train", *stateful_run("numpy", "8", "adam-cosine"), "--epochs", "3", "--checkpoint", ck)
    assert code == 0, err
    return ck


def damaged(tmp_path, adam_checkpoint, **changes) -> str:
    bad = tmp_path / "bad.npz"
    rewrite_archive(adam_checkpoint, bad, **changes)
    code, _, err = cli("train", "--resume", bad, "--epochs", "6")
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "bad.npz" in err, err
    return err


def test_missing_or_damaged_optimizer_state_is_one_line_naming_the_file(tmp_path, adam_checkpoint):
    record = training_record(adam_checkpoint)
    err = damaged(tmp_path, adam_checkpoint, drop=["optimizer_second_W1"])
    assert "damaged checkpoint" in err and "optimizer_second_W1" in err
    err = damaged(tmp_path, adam_checkpoint, arrays={"optimizer_first_b0": np.zeros((2, 2), np.float32)})
    assert "optimizer_first_b0" in err and "shape" in err
    err = damaged(tmp_path, adam_checkpoint, arrays={"optimizer_first_W0": np.full((6, 2), np.nan, np.float32)})
    assert "optimizer_first_W0" in err
    without_state = {key: value for key, value in record.items() if key != "state"}
    err = damaged(tmp_path, adam_checkpoint, training=without_state)
    assert "optimizer state is missing" in err
    for part, value in (
        ("optimizer", {"step": -1, "first": 3, "second": 3}),
        ("optimizer", {"step": 9, "first": 3, "second": 0}),
        ("schedule", {"lr": 0.1}),
    ):
        err = damaged(tmp_path, adam_checkpoint, training={**record, "state": {**record["state"], part: value}})
        assert "damaged checkpoint" in err
    # an SGD checkpoint whose settings were edited to say adam: it has no moments to continue
    sgd_settings = {**record["settings"], "optimizer": "momentum", "beta1": None, "beta2": None, "eps": None, "momentum": 0.9}
    err = damaged(tmp_path, adam_checkpoint, training={**record, "settings": sgd_settings})
    assert "does not fit the momentum optimizer" in err


@pytest.mark.parametrize(
    "flag",
    [
        ["--optimizer", "sgd"],
        ["--lr-schedule", "step:2"],
        ["--early-stopping", "4"],
        ["--beta1", "0.8"],
        ["--momentum", "0.5"],
        ["--weight-decay", "0.1"],
    ],
)
def test_resume_refuses_another_optimizer_schedule_or_stopping(adam_checkpoint, flag):
    code, _, err = cli("train", "--resume", adam_checkpoint, "--epochs", "6", *flag)
    assert code == 2 and f"{flag[0]} cannot change when resuming" in err, err


def test_extending_a_finished_early_stopping_run(tmp_path):
    """A finished run whose last epoch is its best extends exactly; one that kept an earlier epoch
    no longer has its last parameters, and is refused."""
    arguments = stateful_run("numpy", "8", "early-stopping")
    report = whole_run(tmp_path, arguments)
    best, last = report["metrics"]["best_epoch"], report["metrics"]["last_epoch"]
    assert best + 3 == last < 40
    short = [argument if argument != "40" else str(best) for argument in arguments]
    ck = tmp_path / "ck.npz"
    code, _, err = cli("train", *short, "--checkpoint", ck)
    assert code == 0, err
    code, _, err = cli(
        "train", "--resume", ck, "--epochs", "40", "--save", tmp_path / "resumed.npz", "--json", tmp_path / "resumed.json"
    )
    assert code == 0, err
    assert_identical(tmp_path / "whole.npz", tmp_path / "resumed.npz")
    assert json.loads((tmp_path / "resumed.json").read_text())["history"] == report["history"]
    past_best = [argument if argument != "40" else str(last - 1) for argument in arguments]
    code, _, err = cli("train", *past_best, "--checkpoint", ck)
    assert code == 0, err
    code, _, err = cli("train", "--resume", ck, "--epochs", "40")
    assert code == 2 and f"best epoch ({best})" in err and len(err.strip().splitlines()) == 1, err
