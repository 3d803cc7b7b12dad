"""TensorFlow Playground's datasets and input features, generated as the Playground does.

Points lie in the plane [-6, 6]^2 (radius 5 for circle, xor and spiral). ``noise`` is the Playground's
slider as a fraction (its 0-50 % is 0.0-0.5). Classification labels are 0/1 (the Playground's -1/1
mapped for a sigmoid output); regression labels lie in [-1, 1]. Arrays follow the lecture: X is
(2, m), one column per example, Y is (1, m).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CLASSIFICATION = ("circle", "xor", "gauss", "spiral")
REGRESSION = ("reg-plane", "reg-gauss")
DATASETS = CLASSIFICATION + REGRESSION
FEATURES = ("x1", "x2", "x1sq", "x2sq", "x1x2", "sinx1", "sinx2")


def check_dataset(name: str, noise: float) -> None:
    """A known dataset name and a noise fraction in [0, 1], or a ValueError saying which is wrong."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be a fraction in [0, 1] (the Playground's 0-50 % is 0-0.5); got {noise!r}")


def check_features(features, where: str = "") -> list[str]:
    """``features`` as a non-empty list of known feature names; ``where`` names the caller's
    argument in the error (e.g. " in --features")."""
    features = [features] if isinstance(features, str) else list(features)
    unknown = [name for name in features if name not in FEATURES]
    if unknown or not features:
        raise ValueError(f"unknown feature(s) {', '.join(unknown) or '(none given)'}{where}; choose from {', '.join(FEATURES)}")
    return features


def make_dataset(
    name: str, samples: int = 500, noise: float = 0.0, seed: int | Sequence[int] = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(X (2, samples), Y (1, samples)) for one of DATASETS, float64; ``seed``: NumPy's (an int, or
    a sequence of ints for one stream of several, as the large datasets' chunks use)."""
    check_dataset(name, noise)
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 2:
        raise ValueError(f"samples must be an integer >= 2; got {samples!r}")
    rng = np.random.default_rng(seed)
    x, y, label = _GENERATORS[name](rng, int(samples), noise)
    return np.stack([x, y]), label.reshape(1, -1)


def _circle(rng, m, noise):
    radius = 5.0
    inner = m // 2
    r = np.concatenate([rng.uniform(0, radius * 0.5, inner), rng.uniform(radius * 0.7, radius, m - inner)])
    angle = rng.uniform(0, 2 * np.pi, m)
    x, y = r * np.sin(angle), r * np.cos(angle)
    label = (np.hypot(x, y) < radius * 0.5).astype(float)  # labelled before the noise, as the Playground does
    x = x + rng.uniform(-radius, radius, m) * noise
    y = y + rng.uniform(-radius, radius, m) * noise
    return x, y, label


def _xor(rng, m, noise):
    padding = 0.3
    x, y = rng.uniform(-5, 5, m), rng.uniform(-5, 5, m)
    x = x + np.where(x > 0, padding, -padding)
    y = y + np.where(y > 0, padding, -padding)
    label = (x * y >= 0).astype(float)
    x = x + rng.uniform(-5, 5, m) * noise
    y = y + rng.uniform(-5, 5, m) * noise
    return x, y, label


def _gauss(rng, m, noise):
    variance = 0.5 + (4.0 - 0.5) * noise
    positive = m // 2
    centre = np.where(np.arange(m) < positive, 2.0, -2.0)
    x = rng.normal(centre, np.sqrt(variance))
    y = rng.normal(centre, np.sqrt(variance))
    return x, y, (centre > 0).astype(float)


def _spiral(rng, m, noise):
    half = m // 2
    index = np.concatenate([np.arange(half), np.arange(m - half)])
    count = np.concatenate([np.full(half, half), np.full(m - half, m - half)])
    delta = np.concatenate([np.zeros(half), np.full(m - half, np.pi)])
    r = index / count * 5.0
    t = 1.75 * index / count * 2 * np.pi + delta
    x = r * np.sin(t) + rng.uniform(-1, 1, m) * noise
    y = r * np.cos(t) + rng.uniform(-1, 1, m) * noise
    return x, y, (delta == 0).astype(float)


def _reg_plane(rng, m, noise):
    radius = 6.0
    x, y = rng.uniform(-radius, radius, m), rng.uniform(-radius, radius, m)
    label = (x + y) / 10.0  # the Playground maps x + y from [-10, 10] to [-1, 1]
    x = x + rng.uniform(-radius, radius, m) * noise
    y = y + rng.uniform(-radius, radius, m) * noise
    return x, y, label


_GAUSSIANS = ((-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1))


def _reg_gauss(rng, m, noise):
    radius = 6.0
    x, y = rng.uniform(-radius, radius, m), rng.uniform(-radius, radius, m)
    label = np.zeros(m)
    for cx, cy, sign in _GAUSSIANS:
        # each bump falls linearly from 1 at its centre to 0 at distance 2; the strongest one wins
        candidate = sign * np.clip(1.0 - np.hypot(x - cx, y - cy) / 2.0, 0.0, 1.0)
        label = np.where(np.abs(candidate) > np.abs(label), candidate, label)
    x = x + rng.uniform(-radius, radius, m) * noise
    y = y + rng.uniform(-radius, radius, m) * noise
    return x, y, label


_GENERATORS = {
    "circle": _circle,
    "xor": _xor,
    "gauss": _gauss,
    "spiral": _spiral,
    "reg-plane": _reg_plane,
    "reg-gauss": _reg_gauss,
}


def train_test_split(X: np.ndarray, Y: np.ndarray, ratio: float = 0.5, seed: int = 0):
    """Shuffle the m columns and keep ``ratio`` of them for training: (X_train, Y_train, X_test, Y_test)."""
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"the training ratio must be in (0, 1] (the Playground's 10-90 %); got {ratio!r}")
    m = X.shape[1]
    order = np.random.default_rng(seed).permutation(m)
    train = max(1, int(round(m * ratio)))
    return X[:, order[:train]], Y[:, order[:train]], X[:, order[train:]], Y[:, order[train:]]


def expand_features(X: np.ndarray, features) -> np.ndarray:
    """The Playground's input features of the points X (2, m): (len(features), m)."""
    features = check_features(features)
    x1, x2 = X[0], X[1]
    table = {
        "x1": lambda: x1,
        "x2": lambda: x2,
        "x1sq": lambda: x1 * x1,
        "x2sq": lambda: x2 * x2,
        "x1x2": lambda: x1 * x2,
        "sinx1": lambda: np.sin(x1),
        "sinx2": lambda: np.sin(x2),
    }
    return np.stack([table[name]() for name in features])
