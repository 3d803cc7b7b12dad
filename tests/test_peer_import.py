"""``Network.from_sklearn`` and ``Network.from_torch``: an imported model predicts what the peer
predicts (1e-6 in float64); what nnaccel cannot represent is refused by name."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import nnaccel as nna


def data(m=60, n=4, seed=0):
    return np.random.default_rng(seed).normal(size=(m, n))


@pytest.mark.parametrize("activation", ["logistic", "tanh", "relu", "identity"])
@pytest.mark.parametrize("classes", [2, 3])
def test_sklearn_classifier_predicts_what_sklearn_predicts(activation, classes):
    neural_network = pytest.importorskip("sklearn.neural_network")
    X = data()
    y = np.array(["a", "b", "c"])[np.arange(len(X)) % classes]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a few iterations are enough here
        peer = neural_network.MLPClassifier(hidden_layer_sizes=(5, 3), activation=activation, max_iter=20, random_state=0).fit(
            X, y
        )
    net = nna.Network.from_sklearn(peer, backend="numpy")
    assert net.dtype == np.float64
    H = net.predict_proba(X.T)
    expected = peer.predict_proba(X)
    np.testing.assert_allclose(H.T, expected[:, 1:] if classes == 2 else expected, rtol=1e-6, atol=1e-12)
    np.testing.assert_array_equal(peer.classes_[net.predict(X.T)[0]], peer.predict(X))


@pytest.mark.parametrize("targets", [1, 2])
def test_sklearn_regressor_predicts_what_sklearn_predicts(targets):
    neural_network = pytest.importorskip("sklearn.neural_network")
    X = data(seed=1)
    y = X[:, :targets] * 2 + 1 if targets > 1 else X[:, 0] * 2 + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = neural_network.MLPRegressor(hidden_layer_sizes=(6,), activation="relu", max_iter=30, random_state=0).fit(X, y)
    net = nna.Network.from_sklearn(peer, backend="numpy")
    np.testing.assert_allclose(net.predict(X.T).T.reshape(peer.predict(X).shape), peer.predict(X), rtol=1e-6, atol=1e-12)


def test_sklearn_refusals_name_the_problem():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    with pytest.raises(TypeError, match="LogisticRegression"):
        nna.Network.from_sklearn(LogisticRegression())
    with pytest.raises(ValueError, match="not fitted"):
        nna.Network.from_sklearn(MLPClassifier())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            poisson = MLPRegressor(hidden_layer_sizes=(3,), loss="poisson", max_iter=5).fit(data(), np.arange(60) % 4 + 1.0)
    except (ValueError, TypeError):
        pytest.skip(f"scikit-learn {sklearn.__version__} has no poisson loss")
    with pytest.raises(ValueError, match="'exp'"):
        nna.Network.from_sklearn(poisson)


def torch_cases():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    return [
        nn.Sequential(nn.Linear(4, 5), nn.Sigmoid(), nn.Linear(5, 3), nn.Tanh(), nn.Linear(3, 1), nn.Sigmoid()),
        nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 5), nn.LeakyReLU(), nn.Linear(5, 3), nn.Softmax(dim=1)),
        nn.Sequential(nn.Linear(4, 5), nn.ELU(), nn.Sequential(nn.Linear(5, 5), nn.SELU()), nn.Linear(5, 2)),
        nn.Sequential(nn.Linear(4, 3, bias=False), nn.Identity(), nn.Linear(3, 2), nn.Identity()),
    ]


@pytest.mark.parametrize("index", range(4))
def test_torch_sequential_predicts_what_torch_predicts(index):
    torch = pytest.importorskip("torch")
    module = torch_cases()[index].double()
    X = data(seed=index) * 2
    net = nna.Network.from_torch(module, backend="numpy")
    assert net.dtype == np.float64
    with torch.no_grad():
        expected = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(net.predict_proba(X.T).T, expected, rtol=1e-6, atol=1e-12)


def test_torch_refusals_name_the_layer():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    cases = [
        (nn.Sequential(nn.Linear(4, 3), nn.Dropout(), nn.Linear(3, 1)), "Dropout"),
        (nn.Sequential(nn.Linear(4, 3), nn.LeakyReLU(0.2), nn.Linear(3, 1)), "negative_slope=0.2"),
        (nn.Sequential(nn.Linear(4, 3), nn.ELU(0.5), nn.Linear(3, 1)), "alpha=0.5"),
        (nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 1), nn.ReLU()), "ReLU"),
        (nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(dim=1)), "LogSoftmax"),
        (nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.ReLU(), nn.Linear(3, 1)), "2 activations"),
        (nn.Sequential(nn.ReLU(), nn.Linear(4, 1)), "starts with ReLU"),
        (nn.Sequential(nn.Linear(4, 3), nn.Linear(2, 1)), "takes 2 inputs"),
        (nn.Sequential(nn.Conv1d(1, 1, 3)), "Conv1d"),
    ]
    for module, message in cases:
        with pytest.raises(ValueError, match=message):
            nna.Network.from_torch(module)
    with pytest.raises(TypeError, match="Linear"):
        nna.Network.from_torch(nn.Linear(4, 1))


def test_an_imported_model_trains_and_exports_on_nnaccel(tmp_path):
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1), torch.nn.Sigmoid())
    net = nna.Network.from_torch(module, backend="numpy")
    assert net.dtype == np.float32
    X = data(n=2).T
    history = net.fit(X, (X[:1] > 0).astype(float), epochs=3, lr=0.1)
    assert len(history["loss"]) == 3
