"""The bottom layer: what every other part of nnaccel uses, importing nothing of nnaccel.

* ``activations``: the activation and output names, their constants (leaky slope, ELU/SELU
  alphas) and the checks of a name;
* ``architecture``: ``Architecture``, a network's layer sizes, activations and output;
* ``validation``: the checks on user input (arrays, dtypes, seeds, counts) run before any work;
* ``background``: the threads that prepare training data (shuffled orders, gathered chunks)
  while a kernel trains.

The layers above read top to bottom: cli, sklearn, distributed, bench -> nn -> backends, data ->
kernels -> core (and ``optim``, which also imports nothing of nnaccel).
"""
