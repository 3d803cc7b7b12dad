"""Names and constants of the activations and output layers.

The math itself lives in each backend (vectorised there); this module is the one place that says
which names exist and which constants they use, so every backend agrees.
"""

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "identity")
OUTPUTS = ("sigmoid", "identity", "softmax")

LEAKY_RELU_SLOPE = 0.01
ELU_ALPHA = 1.0
# Klambauer et al. (2017), "Self-Normalizing Neural Networks".
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# Every derivative is written in terms of the activation's output H, never its input A, so the
# backward pass needs only the H the forward pass kept: for the relu family H > 0 exactly when A > 0,
# and for elu/selu the negative branch's derivative is H + alpha (times scale for selu).


def check_activation(name: str) -> str:
    if name not in HIDDEN_ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(HIDDEN_ACTIVATIONS)}")
    return name


def check_output(name: str) -> str:
    if name not in OUTPUTS:
        raise ValueError(f"unknown output {name!r}; expected one of {', '.join(OUTPUTS)}")
    return name
