import numpy as np

import nnaccel as nna


def test_lecture_forward_pass_numpy():
    # NOTES.md item 1: the corrected worked example.
    net = nna.Network([3, 3, 1], activation="sigmoid", output="sigmoid", dtype="float64", backend="numpy")
    net.set_params(
        [
            (np.array([[1.2, 0.9, 0.3], [0.2, 0.3, 0.1], [1.3, 1.9, 0.1]]), np.full((3, 1), 0.1)),
            (np.array([[0.2, 0.6, 0.2]]), np.array([[0.1]])),
        ]
    )
    H2 = net.forward(np.array([[0.2], [0.5], [-0.9]]))
    assert abs(H2[0, 0] - 0.67034) < 5e-5
