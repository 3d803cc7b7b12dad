"""The Playground's output panel as a PNG: what the network predicts over the input plane, with the
training and test points on it, beside the training and test loss curves.

matplotlib is imported only when a plot is drawn (the ``plot`` extra), through its object API, so
no global pyplot state or display is involved.

What the left panel shows depends on the inputs:
- two raw inputs (every Playground dataset, a CSV with two input columns): the prediction as a heat
  map over the plane, the decision boundary (probability 0.5) as a line;
- one input: the prediction as a curve over the input;
- more than two: a plane cannot hold them, so classification shows the heat map on the plane of
  the two principal components of the training inputs (a slice through their mean; the other
  directions are held at the mean), and regression shows predicted against true values.
"""

from __future__ import annotations

import os

import numpy as np

# The Playground's colours: orange for class 0 (its -1), blue for class 1 (its +1).
ORANGE = "#f59322"
BLUE = "#0877bd"
MIDDLE = "#e8eaeb"
GRID = 200
# The background is a paler tint of the points' colours, so every point stands out on it.
BACKGROUND_ALPHA = 0.55


def check_available() -> None:
    """Raise before training if matplotlib is missing, rather than after it."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise RuntimeError("--plot needs matplotlib: pip install 'nnaccel[plot]' (or pip install matplotlib)")


def save_training_plot(
    path: str | os.PathLike,
    network,
    pipeline,
    *,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray] | None,
    history: dict,
    final_loss: tuple[float, float | None],
    title: str,
    domain: tuple[float, float] | None = None,
) -> None:
    """Draw the panel and write it atomically to ``path`` (PNG).

    ``train``/``test``: (raw inputs (k, m), labels (m,)) as read, before the pipeline's
    preprocessing. ``history``: {"train_loss": [...], "test_loss": [...]}, one value per epoch.
    ``final_loss``: (training loss, test loss or None) of the trained network, each over its whole
    set: the numbers ``nnaccel train`` prints, shown above the loss curves.
    ``domain``: the (low, high) of both axes of the plane (the Playground's is (-6, 6)); None fits
    the data.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .io import atomic_write

    figure = Figure(figsize=(12.5, 5.4), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    output_axes, loss_axes = figure.subplots(1, 2, width_ratios=(1.05, 1))
    parts = [("training", *train)] + ([("test", *test)] if test is not None and test[1].size else [])
    inputs = parts[0][1].shape[0]
    if inputs == 2:
        _plane(output_axes, network, pipeline, parts, domain)
    elif inputs == 1:
        _line(output_axes, network, pipeline, parts)
    elif pipeline.task == "classification":
        _principal_plane(output_axes, network, pipeline, parts)
    else:
        _predicted_against_true(output_axes, network, pipeline, parts)
    _losses(loss_axes, history, final_loss)
    figure.suptitle(title, fontsize=13)
    extension = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    atomic_write(path, lambda handle: figure.savefig(handle, format=extension if extension in ("pdf", "svg") else "png"))


# ----- the output panel ---------------------------------------------------------------------------
def _diverging():
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("playground", [ORANGE, MIDDLE, BLUE])


def _class_colours(count: int) -> list:
    if count == 2:
        return [ORANGE, BLUE]
    from matplotlib import colormaps

    palette = colormaps["tab10" if count <= 10 else "tab20"]
    return [palette(index % palette.N) for index in range(count)]


def _predict(network, pipeline, raw: np.ndarray) -> np.ndarray:
    """Output activations H (outputs, m) of raw inputs (k, m)."""
    return network.forward(pipeline.inputs_of(raw))


def _surface(network, pipeline, raw: np.ndarray) -> tuple[np.ndarray, str]:
    """What the heat map shows at raw points (k, m): for two classes P(class 1) in [0, 1], for more
    the winning class index, for regression the predicted value in the label's units."""
    H = _predict(network, pipeline, raw)
    if pipeline.task == "regression":
        return np.asarray(pipeline.predictions(H), dtype=np.float64).reshape(H.shape[0], -1)[0], "prediction"
    if H.shape[0] == 1:
        return H[0].astype(np.float64), "probability"
    return np.argmax(H, axis=0) + H.max(axis=0) * 0.999, "classes"  # integer part: class, fraction: confidence


def _scatter(axes, pipeline, parts, coordinates, colour_scale=None, boundary=True):
    """Training points with white rims, test points with black rims, as the Playground draws them."""
    from matplotlib.lines import Line2D

    handles = []
    for (name, _raw, labels), (u, v) in zip(parts, coordinates):
        rim = "white" if name == "training" else "black"
        if pipeline.task == "classification":
            index = _class_numbers(pipeline, labels)
            colours = np.array(_class_colours(len(pipeline.classes)), dtype=object)[index]
            axes.scatter(u, v, c=list(colours), s=24, edgecolors=rim, linewidths=0.9, zorder=3)
        else:
            cmap, low, high = colour_scale
            axes.scatter(u, v, c=labels, cmap=cmap, vmin=low, vmax=high, s=24, edgecolors=rim, linewidths=0.9, zorder=3)
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                linestyle="",
                markerfacecolor="#aaaaaa",
                markeredgecolor=rim,
                markeredgewidth=1.2,
                markersize=7,
                label=f"{name} points ({labels.size})",
            )
        )
    if pipeline.task == "classification":
        for value, colour in zip(pipeline.classes, _class_colours(len(pipeline.classes))):
            handles.append(Line2D([], [], marker="o", linestyle="", color=colour, markersize=7, label=f"class {value}"))
        if len(pipeline.classes) == 2 and boundary:
            handles.append(Line2D([], [], color="#333333", linewidth=1.4, label="decision boundary"))
    axes.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=min(len(handles), 3), fontsize=8.5, frameon=False
    )


def _class_numbers(pipeline, labels) -> np.ndarray:
    from .data.pipeline import class_indices

    return class_indices(labels, pipeline.classes)


def _heat_map(axes, values: np.ndarray, kind: str, pipeline, extent, labels_all):
    """Draw ``values`` (GRID, GRID) over ``extent``; return the regression colour scale (or None)."""
    figure = axes.get_figure()
    if kind == "probability":
        image = axes.imshow(
            values,
            origin="lower",
            extent=extent,
            cmap=_diverging(),
            vmin=0,
            vmax=1,
            aspect="auto",
            interpolation="bilinear",
            alpha=BACKGROUND_ALPHA,
        )
        if values.min() < 0.5 < values.max():
            axes.contour(values, levels=[0.5], extent=extent, colors="#333333", linewidths=1.4, origin="lower")
        bar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.02)
        bar.set_label(f"P(class {pipeline.classes[1]})")
        return None
    if kind == "classes":
        from matplotlib.colors import to_rgb

        colours = np.array([to_rgb(colour) for colour in _class_colours(len(pipeline.classes))])
        index = np.floor(values).astype(int)
        confidence = (values - index)[..., None]
        rgb = colours[index] * confidence + np.array(to_rgb(MIDDLE)) * (1 - confidence)
        axes.imshow(rgb, origin="lower", extent=extent, aspect="auto", interpolation="nearest", alpha=BACKGROUND_ALPHA)
        return None
    low, high = np.percentile(labels_all, [1, 99])
    if pipeline.target_mean is None and low >= -1 and high <= 1:
        low, high = -1.0, 1.0  # the Playground's regression sets lie in [-1, 1]
    cmap = _diverging()
    image = axes.imshow(
        values,
        origin="lower",
        extent=extent,
        cmap=cmap,
        vmin=low,
        vmax=high,
        aspect="auto",
        interpolation="bilinear",
        alpha=BACKGROUND_ALPHA,
    )
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.02).set_label(f"predicted {pipeline.label or 'value'}")
    return cmap, low, high


def _plane(axes, network, pipeline, parts, domain):
    everything = np.concatenate([raw for _, raw, _ in parts], axis=1)
    if domain is None:
        low, high = everything.min(axis=1), everything.max(axis=1)
        pad = 0.08 * np.maximum(high - low, 1e-9)
        (x_low, y_low), (x_high, y_high) = low - pad, high + pad
    else:
        x_low = y_low = domain[0]
        x_high = y_high = domain[1]
    u, v = np.meshgrid(np.linspace(x_low, x_high, GRID), np.linspace(y_low, y_high, GRID))
    values, kind = _surface(network, pipeline, np.stack([u.ravel(), v.ravel()]))
    extent = (x_low, x_high, y_low, y_high)
    labels_all = np.concatenate([labels for _, _, labels in parts])
    scale = _heat_map(axes, values.reshape(GRID, GRID), kind, pipeline, extent, labels_all)
    _scatter(axes, pipeline, parts, [(raw[0], raw[1]) for _, raw, _ in parts], scale)
    axes.set_xlim(x_low, x_high)
    axes.set_ylim(y_low, y_high)
    axes.set_xlabel(pipeline.inputs[0])
    axes.set_ylabel(pipeline.inputs[1])
    axes.set_aspect("equal" if domain is not None else "auto")
    axes.set_title("output: " + ("decision boundary" if pipeline.task == "classification" else "regression surface"))


def _line(axes, network, pipeline, parts):
    everything = np.concatenate([raw[0] for _, raw, _ in parts])
    pad = 0.05 * max(np.ptp(everything), 1e-9)
    grid = np.linspace(everything.min() - pad, everything.max() + pad, 400).reshape(1, -1)
    H = _predict(network, pipeline, grid)
    for name, raw, labels in parts:
        rim = "white" if name == "training" else "black"
        if pipeline.task == "classification":
            target = _class_numbers(pipeline, labels)
            if len(pipeline.classes) == 2:
                colours = np.where(target == 1, BLUE, ORANGE)
            else:
                colours = np.array(_class_colours(len(pipeline.classes)), dtype=object)[target]
            axes.scatter(raw[0], target, c=list(colours), s=22, edgecolors=rim, linewidths=0.8, label=f"{name} data", zorder=3)
        else:
            axes.scatter(
                raw[0],
                labels,
                color=BLUE if name == "training" else ORANGE,
                s=18,
                edgecolors=rim,
                linewidths=0.6,
                label=f"{name} data",
                zorder=3,
            )
    if pipeline.task == "classification" and H.shape[0] == 1:
        axes.plot(grid[0], H[0], color="#333333", linewidth=2, label=f"P(class {pipeline.classes[1]})")
        axes.set_ylabel("class / probability")
    elif pipeline.task == "classification":
        axes.plot(grid[0], np.argmax(H, axis=0), color="#333333", linewidth=2, label="predicted class")
        axes.set_ylabel("class number")
    else:
        axes.plot(grid[0], pipeline.predictions(H), color="#333333", linewidth=2, label="prediction")
        axes.set_ylabel(pipeline.label or "value")
    axes.set_xlabel(pipeline.inputs[0])
    axes.legend(fontsize=8.5)
    axes.set_title("output over the input")


def _principal_plane(axes, network, pipeline, parts):
    """Heat map on the plane of the training inputs' two principal components, through their mean."""
    train_raw = parts[0][1]
    scale = np.reshape(pipeline.scale, (-1, 1)) if pipeline.scale is not None else np.ones((train_raw.shape[0], 1))
    centre = train_raw.mean(axis=1, keepdims=True)
    # principal directions of the standardised inputs, so no column dominates by its units alone
    _, singular, directions = np.linalg.svd(((train_raw - centre) / scale).T, full_matrices=False)
    plane = directions[:2]  # (2, k)
    share = (singular[:2] ** 2).sum() / max((singular**2).sum(), 1e-300)
    coordinates = [plane @ ((raw - centre) / scale) for _, raw, _ in parts]
    stacked = np.concatenate(coordinates, axis=1)
    low, high = stacked.min(axis=1), stacked.max(axis=1)
    pad = 0.08 * np.maximum(high - low, 1e-9)
    low, high = low - pad, high + pad
    u, v = np.meshgrid(np.linspace(low[0], high[0], GRID), np.linspace(low[1], high[1], GRID))
    raw_grid = centre + scale * (plane.T @ np.stack([u.ravel(), v.ravel()]))
    values, kind = _surface(network, pipeline, raw_grid)
    extent = (low[0], high[0], low[1], high[1])
    _heat_map(axes, values.reshape(GRID, GRID), kind, pipeline, extent, None)
    _scatter(axes, pipeline, parts, [(c[0], c[1]) for c in coordinates])
    axes.set_xlim(low[0], high[0])
    axes.set_ylim(low[1], high[1])
    axes.set_xlabel("principal component 1")
    axes.set_ylabel("principal component 2")
    axes.set_title(
        f"{train_raw.shape[0]} inputs: output on the plane of the 2 principal components\n"
        f"({share:.0%} of the variance), through the mean; points projected onto it",
        fontsize=10,
    )


def _predicted_against_true(axes, network, pipeline, parts):
    everything = []
    for name, raw, labels in parts:
        predicted = np.asarray(pipeline.predictions(_predict(network, pipeline, raw)), dtype=np.float64)
        truth = np.asarray(labels, dtype=np.float64)
        predicted, truth = predicted.reshape(truth.shape[0], -1)[:, 0], truth.reshape(truth.shape[0], -1)[:, 0]
        axes.scatter(
            truth,
            predicted,
            s=16,
            color=BLUE if name == "training" else ORANGE,
            edgecolors="white" if name == "training" else "black",
            linewidths=0.5,
            label=f"{name} data (R² {_r2(truth, predicted):.3f})",
            zorder=3,
        )
        everything.extend([truth.min(), truth.max(), predicted.min(), predicted.max()])
    low, high = min(everything), max(everything)
    axes.plot([low, high], [low, high], color="#333333", linewidth=1, label="perfect prediction")
    axes.set_xlabel(f"true {pipeline.label or 'value'}")
    axes.set_ylabel(f"predicted {pipeline.label or 'value'}")
    axes.legend(fontsize=8.5)
    axes.set_title(f"{len(pipeline.inputs)} inputs: predicted against true values")


def _r2(truth: np.ndarray, predicted: np.ndarray) -> float:
    spread = np.sum((truth - truth.mean()) ** 2)
    return float(1.0 - np.sum((truth - predicted) ** 2) / spread) if spread > 0 else float("nan")


# ----- the loss curves ----------------------------------------------------------------------------
def _losses(axes, history: dict, final_loss: tuple[float, float | None]):
    train = np.asarray(history.get("train_loss", []), dtype=np.float64)
    test = np.asarray(history.get("test_loss", []), dtype=np.float64)
    epochs = np.arange(1, train.size + 1)
    # an epoch's training loss is the mean over its batches while the weights still move, so its
    # last point is not the trained network's loss: the title gives that one, as the summary does
    axes.plot(epochs, train, color="#888888", linewidth=1.8, label="training loss (mean over the epoch's batches)")
    if test.size:
        axes.plot(epochs[: test.size], test, color="#111111", linewidth=1.8, label="test loss (after the epoch)")
    positive = np.concatenate([train, test])
    if positive.size and positive.min() > 0 and positive.max() / positive.min() > 30:
        axes.set_yscale("log")  # a loss falling by orders of magnitude is flat on a linear axis
    else:
        axes.set_ylim(bottom=0)
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.grid(True, alpha=0.3)
    axes.legend()
    axes.set_title(final_loss_text(*final_loss))


def final_loss_text(train_loss: float, test_loss: float | None) -> str:
    """The trained network's losses in words, the same line in the summary and above the curves."""
    text = f"training loss {train_loss:.4f}"
    return text if test_loss is None else text + f"   test loss {test_loss:.4f}"
