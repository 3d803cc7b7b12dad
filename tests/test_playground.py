"""The Playground's datasets and features, checked against the rules the Playground draws them by."""

from __future__ import annotations

import numpy as np
import pytest

from nnaccel.data.playground import DATASETS, FEATURES, expand_features, make_dataset, train_test_split


@pytest.mark.parametrize("name", DATASETS)
def test_shapes_seed_and_noise(name):
    X, Y = make_dataset(name, 301, 0.0, seed=4)
    assert X.shape == (2, 301) and Y.shape == (1, 301)
    again, same_labels = make_dataset(name, 301, 0.0, seed=4)
    np.testing.assert_array_equal(X, again)
    np.testing.assert_array_equal(Y, same_labels)
    other, _ = make_dataset(name, 301, 0.0, seed=5)
    if name != "spiral":  # the noiseless spiral is the same curve for every seed
        assert not np.array_equal(X, other)
    noisy, _ = make_dataset(name, 301, 0.3, seed=4)
    assert not np.array_equal(X, noisy)
    assert np.abs(X).max() <= 6.0 + 1e-12


def test_circle_labels_the_inner_disc():
    X, Y = make_dataset("circle", 1000, 0.0, seed=0)
    radius = np.hypot(X[0], X[1])
    np.testing.assert_array_equal(Y[0], (radius < 2.5).astype(float))
    assert Y.mean() == 0.5
    assert radius[Y[0] == 0].min() >= 3.5 and radius.max() <= 5.0
    # noise moves points but keeps the labels they were drawn with
    noisy, noisy_labels = make_dataset("circle", 1000, 0.5, seed=0)
    np.testing.assert_array_equal(noisy_labels, Y)


def test_xor_labels_the_quadrants():
    X, Y = make_dataset("xor", 1000, 0.0, seed=0)
    np.testing.assert_array_equal(Y[0], (X[0] * X[1] >= 0).astype(float))
    assert np.abs(X).min() >= 0.3  # the Playground's padding off the axes


def test_gauss_has_two_clusters_whose_spread_grows_with_noise():
    X, Y = make_dataset("gauss", 4000, 0.0, seed=0)
    positive = X[:, Y[0] == 1]
    np.testing.assert_allclose(positive.mean(axis=1), [2, 2], atol=0.1)
    np.testing.assert_allclose(positive.var(axis=1), [0.5, 0.5], rtol=0.1)
    wide, labels = make_dataset("gauss", 4000, 0.5, seed=0)
    assert wide[:, labels[0] == 1].var(axis=1).min() > 1.5


def test_spiral_arms_wind_out_to_radius_five():
    X, Y = make_dataset("spiral", 400, 0.0, seed=0)
    radius = np.hypot(X[0], X[1])
    for label in (0, 1):
        arm = radius[Y[0] == label]
        np.testing.assert_allclose(arm, np.arange(200) / 200 * 5.0)
    # the two arms are a half turn apart: point i of one is point i of the other, mirrored
    np.testing.assert_allclose(X[:, :200], -X[:, 200:], atol=1e-12)


def test_regression_targets():
    X, Y = make_dataset("reg-plane", 500, 0.0, seed=0)
    np.testing.assert_allclose(Y[0], (X[0] + X[1]) / 10)
    X, Y = make_dataset("reg-gauss", 2000, 0.0, seed=0)
    assert -1 <= Y.min() < -0.5 and 0.5 < Y.max() <= 1
    near = np.hypot(X[0] + 4, X[1] - 2.5) < 0.3  # next to the positive bump at (-4, 2.5)
    assert near.any() and (Y[0, near] > 0.8).all()


def test_split_is_a_seeded_partition():
    X = np.arange(20.0).reshape(2, 10)
    Y = np.arange(10.0).reshape(1, 10)
    X_train, Y_train, X_test, Y_test = train_test_split(X, Y, 0.7, seed=1)
    assert X_train.shape == (2, 7) and X_test.shape == (2, 3)
    assert sorted(np.concatenate([Y_train[0], Y_test[0]])) == list(range(10))
    np.testing.assert_array_equal(X_train[0], Y_train[0])  # columns stay paired
    assert np.array_equal(train_test_split(X, Y, 0.7, seed=1)[1], Y_train)
    assert train_test_split(X, Y, 1.0, seed=1)[2].shape == (2, 0)


def test_features_are_the_playgrounds_formulas():
    X = np.array([[0.5, -2.0, 3.0], [1.5, 0.25, -1.0]])
    x1, x2 = X
    expected = {"x1": x1, "x2": x2, "x1sq": x1**2, "x2sq": x2**2, "x1x2": x1 * x2, "sinx1": np.sin(x1), "sinx2": np.sin(x2)}
    features = expand_features(X, FEATURES)
    for row, name in zip(features, FEATURES):
        np.testing.assert_allclose(row, expected[name])


def test_bad_names_and_values_are_refused():
    with pytest.raises(ValueError, match="moons"):
        make_dataset("moons")
    with pytest.raises(ValueError, match="cosx1"):
        expand_features(np.zeros((2, 3)), ["x1", "cosx1"])
    with pytest.raises(ValueError, match="noise"):
        make_dataset("xor", 10, 2.0)
    with pytest.raises(ValueError, match="samples"):
        make_dataset("xor", 1)
