"""The solvers of scikit-learn's MLP on nnaccel networks.

``StochasticRun`` is ``BaseMultilayerPerceptron._fit_stochastic`` (solver ``sgd`` or ``adam``): the
epochs run in ``Network.fit`` on the backend, and after each one scikit-learn's end of an iteration
decides the next learning rate and whether to stop. That decision lives in one place,
``StochasticRun.end_of_epoch``, because scikit-learn shares one no-improvement counter between
stopping and the adaptive rate, watches the training loss with its L2 term (or the validation
score with early stopping) and keeps the counter across warm-start and partial_fit calls; it reaches
nnaccel's epoch loop as a learning-rate schedule (``EndOfEpoch``), which the loop asks after each
epoch for the next rate and whether training is finished.

``fit_lbfgs`` is ``_fit_lbfgs``: ``scipy.optimize.minimize(method="L-BFGS-B", jac=True)`` on the
backend's full-batch loss and gradient, the data staying on the backend between evaluations.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..errors import TrainingDiverged, TrainingInterrupted
from ..nn.network import EVALUATION_CHUNK
from ..nn.training import TrainingState
from ..optim import Schedule
from ._params import batch_size as resolve_batch_size

# scikit-learn's floor for the adaptive rate: below it, training stops
_ADAPTIVE_MIN_LR = 1e-6


def squared_weights(params) -> float:
    """sum ||W||^2 over the layers of NumPy [(W, b)] (biases are not penalised)."""
    return float(sum(np.vdot(W, W) for W, _ in params))


class EndOfEpoch(Schedule):
    """A learning-rate schedule that hands the end of each epoch to ``StochasticRun``: nnaccel's
    loop gives it the epoch's training loss and reads back ``state.lr`` and ``state.finished``."""

    def __init__(self, run: StochasticRun):
        self._run = run

    def after_epoch(self, state, epoch, loss):
        self._run.end_of_epoch(state, loss)


class ValidationOutputs:
    """The network's outputs (m_val, outputs) on the validation rows, which move to the backend
    once per fit rather than once per epoch."""

    def __init__(self, network, X_val: np.ndarray):
        backend = network.backend
        self._network = network
        self._chunks = [
            backend.asarray(np.ascontiguousarray(X_val[start : start + EVALUATION_CHUNK].T), network.dtype)
            for start in range(0, X_val.shape[0], EVALUATION_CHUNK)
        ]

    def __call__(self) -> np.ndarray:
        network = self._network
        plan, backend = network.plan(None), network.backend
        H = np.empty((network.architecture.n_outputs, sum(chunk.shape[1] for chunk in self._chunks)))
        start = 0
        for chunk in self._chunks:
            # plan.forward returns its own buffer: copy each chunk out before the next call
            H[:, start : start + chunk.shape[1]] = backend.to_numpy(plan.forward(network.parameters, chunk))
            start += chunk.shape[1]
        return H.T


class StochasticRun:
    """One fit (``incremental=False``, up to ``max_iter`` epochs) or partial_fit (one epoch) with
    the sgd or adam solver, on ``network``, from rows X (m, n) and targets Y (m, outputs).

    ``validation`` is None or (X_val rows, y_val as the estimator's ``score`` takes it); ``seed``
    and ``start_epoch`` fix the shuffled order of each epoch (nnaccel's order is a function of the
    seed and the epoch's number), so partial_fit calls continue where the last call stopped. The
    estimator's scikit-learn attributes (``loss_curve_``, ``t_``, ``n_iter_``, the counters) are
    updated after each epoch, as scikit-learn does.
    """

    def __init__(self, estimator, network, settings, X, Y, *, validation, seed, start_epoch, incremental):
        self.estimator, self.network, self.settings = estimator, network, settings
        self.X, self.Y = X, Y
        self.seed, self.start_epoch, self.incremental = seed, start_epoch, incremental
        self.n_train = X.shape[0]
        self.batch_size = resolve_batch_size(estimator.batch_size, self.n_train)
        self.batches = -(-self.n_train // self.batch_size)
        self.alpha = float(estimator.alpha)
        self.validation = None
        if validation is not None:
            self.validation = (ValidationOutputs(network, validation[0]), validation[1])
        self.stopped = False
        self._penalty = self._penalty_now()

    # ----- the run ----------------------------------------------------------------------------------
    def run(self) -> None:
        """Train, then (with early stopping) restore the parameters of the best validation score."""
        estimator, network = self.estimator, self.network
        estimator.n_iter_ = 0
        state = TrainingState(optimizer=estimator._optimizer_state, schedule=estimator._schedule_state)
        if state.schedule is not None:
            state.schedule.finished = False  # a new call: the last one's stop does not carry over
        epochs = 1 if self.incremental else int(estimator.max_iter)
        try:
            network.fit(
                np.ascontiguousarray(self.X.T),
                np.ascontiguousarray(self.Y.T),
                epochs=self.start_epoch + epochs,
                start_epoch=self.start_epoch,
                lr=float(estimator.learning_rate_init),
                batch_size=self.batch_size,
                # scikit-learn adds alpha W to the batch's summed gradient: alpha / batch of the mean
                l2=self.alpha / self.batch_size,
                shuffle=bool(estimator.shuffle),
                seed=self.seed,
                optimizer=self.settings.optimizer,
                lr_schedule=EndOfEpoch(self),
                state=state,
            )
        except TrainingInterrupted:
            warnings.warn("Training interrupted by user.", stacklevel=3)  # as scikit-learn: keep what was learnt
        except TrainingDiverged as error:  # scikit-learn's error type and words, with nnaccel's detail
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain large values and need "
                f"to be preprocessed ({error})"
            ) from error
        estimator._optimizer_state = state.capture_optimizer()
        estimator._schedule_state = state.schedule
        estimator._epochs_run = self.start_epoch + estimator.n_iter_
        if not self.incremental and not self.stopped and estimator.n_iter_ == estimator.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({estimator.max_iter}) reached and the optimization "
                "hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )
        if estimator.early_stopping:
            network.set_params(estimator._best_params)

    def end_of_epoch(self, schedule_state, data_loss: float) -> None:
        """scikit-learn's end of an iteration: record the loss, count the epochs without
        improvement, set the next rate (invscaling, adaptive) and stop when the count is exceeded."""
        estimator = self.estimator
        # scikit-learn's loss holds alpha/2 ||W||^2 / batch for each batch: the epoch's start
        # weights stand for every batch's (exact for full batches)
        estimator.loss_ = data_loss + self._penalty
        self._penalty = self._penalty_now()
        estimator.loss_curve_.append(estimator.loss_)
        estimator.n_iter_ += 1
        estimator.t_ += self.n_train
        self._say(f"Iteration {estimator.n_iter_}, loss = {estimator.loss_:.8f}")
        self._count_no_improvement()
        sgd = estimator.solver == "sgd"
        if sgd and estimator.learning_rate == "invscaling":
            schedule_state.lr = float(estimator.learning_rate_init) / (estimator.t_ + 1) ** float(estimator.power_t)
        if estimator._no_improvement_count > estimator.n_iter_no_change:
            watched = "Validation score" if estimator.early_stopping else "Training loss"
            message = (
                f"{watched} did not improve more than tol={estimator.tol:f} for {estimator.n_iter_no_change} consecutive epochs."
            )
            if sgd and estimator.learning_rate == "adaptive" and schedule_state.lr > _ADAPTIVE_MIN_LR:
                schedule_state.lr /= 5.0
                estimator._no_improvement_count = 0
                self._say(f"{message} Setting learning rate to {schedule_state.lr:f}")
            else:
                self.stopped = schedule_state.finished = True
                self._say(f"{message} Stopping.")

    # ----- pieces -----------------------------------------------------------------------------------
    def _count_no_improvement(self) -> None:
        """scikit-learn's ``_update_no_improvement_count``: on the validation score with early
        stopping (keeping the best parameters), else on the training loss."""
        estimator, tol = self.estimator, float(self.estimator.tol)
        if self.validation is not None:
            outputs, y_val = self.validation
            score = estimator._score_outputs(outputs(), y_val)
            estimator.validation_scores_.append(score)
            self._say(f"Validation score: {score:f}")
            improved = not score < estimator.best_validation_score_ + tol
            if score > estimator.best_validation_score_:
                estimator.best_validation_score_ = score
                estimator._best_params = self.network.get_params()
        else:
            loss = estimator.loss_curve_[-1]
            improved = not loss > estimator.best_loss_ - tol
            estimator.best_loss_ = min(estimator.best_loss_, loss)
        estimator._no_improvement_count = 0 if improved else estimator._no_improvement_count + 1

    def _penalty_now(self) -> float:
        """An epoch's L2 term of scikit-learn's loss, at the current weights: alpha/2 ||W||^2 / batch
        for each of its batches, weighted by batch / n as the loss is, i.e. batches alpha/2 ||W||^2 / n."""
        if not self.alpha:
            return 0.0
        return 0.5 * self.alpha * self.batches * squared_weights(self.network.get_params()) / self.n_train

    def _say(self, line: str) -> None:
        if self.estimator.verbose:
            print(line)


# ----- lbfgs ----------------------------------------------------------------------------------------
class FullBatchObjective:
    """scikit-learn's lbfgs objective on the backend: the mean loss over every example plus
    alpha/(2m) ||W||^2, and its gradient, as functions of one packed float64 vector.

    X and Y move to the backend once; each evaluation moves only the parameters there and the
    gradients back (``Network.gradients`` would move the data every time).
    """

    def __init__(self, network, X: np.ndarray, Y: np.ndarray, alpha: float):
        backend = network.backend
        self.network, self.alpha, self.m = network, float(alpha), X.shape[0]
        self.X = backend.asarray(np.ascontiguousarray(X.T), network.dtype)
        self.Y = backend.asarray(np.ascontiguousarray(Y.T), network.dtype)
        self.shapes = [(W.shape, b.shape) for W, b in network.get_params()]
        self.grads = network.gradient_buffers()
        self.last = (None, None)  # (x, loss) of the latest evaluation, for verbose output

    def pack(self, params) -> np.ndarray:
        return np.concatenate([np.ravel(array) for pair in params for array in pair]).astype(np.float64)

    def unpack(self, packed: np.ndarray) -> list:
        params, start = [], 0
        for W_shape, b_shape in self.shapes:
            W = packed[start : start + int(np.prod(W_shape))].reshape(W_shape)
            start += W.size
            b = packed[start : start + int(np.prod(b_shape))].reshape(b_shape)
            start += b.size
            params.append((W, b))
        return params

    def __call__(self, packed: np.ndarray) -> tuple[float, np.ndarray]:
        network, backend = self.network, self.network.backend
        params = self.unpack(packed)
        network.set_params(params)
        total = backend.loss_and_gradients(
            network.architecture, network.parameters, self.X, self.Y, network.workspace(self.m), self.grads, 1.0 / self.m
        )
        scale = self.alpha / self.m
        loss = backend.to_float(total) / self.m + 0.5 * scale * squared_weights(params)
        grads = [(backend.to_numpy(dW) + scale * W, backend.to_numpy(db)) for (dW, db), (W, _) in zip(self.grads, params)]
        self.last = (packed.copy(), loss)
        return loss, self.pack(grads)


def fit_lbfgs(estimator, network, X: np.ndarray, Y: np.ndarray) -> None:
    """``scipy.optimize.minimize(method="L-BFGS-B", jac=True)`` from the network's parameters with
    scikit-learn's options (maxiter=max_iter, maxfun=max_fun, gtol=tol); sets ``n_iter_`` and
    ``loss_`` and leaves the result in ``network``."""
    import scipy.optimize

    objective = FullBatchObjective(network, X, Y, estimator.alpha)
    result = scipy.optimize.minimize(
        objective,
        objective.pack(network.get_params()),
        method="L-BFGS-B",
        jac=True,
        options={"maxfun": int(estimator.max_fun), "maxiter": int(estimator.max_iter), "gtol": float(estimator.tol)},
        callback=_lbfgs_progress(objective) if estimator.verbose else None,
    )
    estimator.n_iter_ = _checked_iterations(result, int(estimator.max_iter))
    estimator.loss_ = float(result.fun)
    network.set_params(objective.unpack(result.x))


def _lbfgs_progress(objective):
    count = [0]

    def callback(x):
        count[0] += 1
        if objective.last[0] is not None and np.array_equal(objective.last[0], x):
            print(f"Iteration {count[0]}, loss = {objective.last[1]:.8f}")

    return callback


def _checked_iterations(result, max_iter: int) -> int:
    """The iterations L-BFGS-B ran, warning (as scikit-learn) when it stopped before converging."""
    if result.status != 0:
        message = result.message.decode("latin1") if isinstance(result.message, bytes) else result.message
        warnings.warn(
            f"lbfgs failed to converge after {result.nit} iteration(s) (status={result.status}):\n{message}\n\n"
            f"Increase the number of iterations to improve the convergence (max_iter={max_iter}).\n"
            "You might also want to scale the data.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return min(int(result.nit), max_iter)
