"""User data: the CSV/.npy reader and the preprocessing a saved model carries."""

from __future__ import annotations

import numpy as np
import pytest

from nnaccel.data.files import read_table
from nnaccel.data.pipeline import Pipeline, build_pipeline, infer_task


@pytest.mark.parametrize(
    "labels, task",
    [
        ([0, 1, 1, 0, 1], "classification"),
        ([0.0, 1.0, 1.0, 0.0, 0.0], "classification"),
        (np.arange(40) % 4, "classification"),
        (["cat", "dog", "cat", "cat", "dog"], "classification"),
        ([0.5, 1.7, 2.2, 3.1, 0.1], "regression"),
        (np.arange(40), "regression"),  # 40 distinct integers in 40 rows: a quantity, not classes
        ([-1, 1, 1, -1, 1], "regression"),  # two classes other than 0/1 could be either: needs --task
    ],
)
def test_task_from_labels(labels, task):
    assert infer_task(np.asarray(labels)) == task


def test_classes_map_to_outputs_and_back():
    labels = np.array([5, 3, 9, 3, 5, 9, 9])
    pipeline = build_pipeline(np.zeros((1, 7)), labels, inputs=["a"], task="classification", standardize=False)
    assert pipeline.classes == [3, 5, 9] and pipeline.output == "softmax" and pipeline.n_outputs == 3
    Y = pipeline.targets_of(labels)
    np.testing.assert_array_equal(Y.argmax(axis=0), [1, 0, 2, 0, 1, 2, 2])
    np.testing.assert_array_equal(pipeline.predictions(Y), labels)
    with pytest.raises(ValueError, match="not one of the classes"):
        pipeline.targets_of(np.array([4]))


def test_standardisation_uses_the_training_part_and_round_trips():
    raw_train = np.array([[1.0, 3.0, 5.0], [10.0, 10.0, 10.0]])
    target = np.array([2.0, 4.0, 6.0])
    pipeline = build_pipeline(raw_train, target, inputs=["a", "b"], task="regression", standardize=True)
    np.testing.assert_allclose(pipeline.mean, [3.0, 10.0])
    np.testing.assert_allclose(pipeline.scale, [np.std([1, 3, 5]), 1.0])  # a constant column is left unscaled
    X = pipeline.inputs_of(raw_train)
    np.testing.assert_allclose(X.mean(axis=1), [0, 0], atol=1e-12)
    Y = pipeline.targets_of(target)
    np.testing.assert_allclose(pipeline.predictions(Y), target)
    again = Pipeline.from_dict(pipeline.to_dict())
    np.testing.assert_allclose(again.inputs_of(raw_train), X)


def test_csv_reader_keeps_text_columns_and_finds_bad_cells(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('"a",b,kind\n1,2.5,x\n-3,4e2,y\n')
    table = read_table(path)
    assert table.names == ["a", "b", "kind"]
    np.testing.assert_allclose(table.numbers(["a", "b"]), [[1, 2.5], [-3, 400]])
    assert list(table.labels("kind")) == ["x", "y"]
    with pytest.raises(ValueError, match="line 2, column 'kind' holds 'x'"):
        table.numbers(["kind"])
    path.write_text("a,y\n1,0\nnan,1\n")
    with pytest.raises(ValueError, match="line 3, column 'a'"):
        read_table(path).numbers(["a"])
