"""One full training step (forward + backward + update, data already on the device) per benchmark,
for 2-6-6-1 and 784-256-10 on every backend that can run here and on the peer libraries."""

from __future__ import annotations

import numpy as np
import pytest

from nnaccel.bench.engine import runner_unavailable_reason
from nnaccel.bench.runners import RunnerUnavailable, make_data, make_runner
from nnaccel.errors import BackendUnavailable


def test_training_step(benchmark, backend, case):
    net, m = case
    reason = runner_unavailable_reason(backend)
    if reason is not None:
        pytest.skip(reason)
    try:
        runner = make_runner(backend, net, *make_data(net, m, rows=backend == "sklearn"))
    except (BackendUnavailable, RunnerUnavailable) as error:
        pytest.skip(str(error))
    before = runner.params()
    runner.step()  # warm-up: JIT compilation, thread pools, first-touch of the buffers
    runner.synchronize()

    def step():
        runner.step()
        runner.synchronize()  # GPU work counts in the step's time (a no-op on the CPU)

    benchmark.extra_info.update(net=net.label, m=m, timed=runner.timed)
    benchmark(step)

    after = runner.params()
    assert all(np.isfinite(array).all() for array in after), "training produced NaN or infinite parameters"
    assert any(not np.array_equal(old, new) for old, new in zip(before, after)), "the step did not update anything"
