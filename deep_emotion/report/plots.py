"""The reports' figures, drawn with matplotlib's object API (no pyplot: no global state, no
display backend), so the same figure goes into a notebook or a PNG in the HTML file."""
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from contract import data as dc

SPLIT_COLOURS = {"train": "#1f77b4", "eval": "#ff7f0e", "test": "#2ca02c"}
SOURCE_COLOURS = dict(zip(dc.SOURCES, ("#7f7f7f", "#9467bd", "#d62728", "#17becf")))


def class_distribution(per_split: pd.DataFrame) -> Figure:
    """Grouped bars: each class's share of its split."""
    classes = list(dc.EMOTIONS)
    shares = per_split[classes].div(per_split[classes].sum(axis=1).replace(0, 1), axis=0)
    figure = Figure(figsize=(8, 3))
    ax = figure.subplots()
    width = 0.8 / max(len(shares), 1)
    for i, (split, row) in enumerate(shares.iterrows()):
        ax.bar(np.arange(len(classes)) + (i - (len(shares) - 1) / 2) * width, row.values, width,
               label=f"{split} ({int(per_split.loc[split, classes].sum())})", color=SPLIT_COLOURS.get(split))
    ax.set_xticks(range(len(classes)), classes)
    ax.set_ylabel("share of split")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return figure


def faces_grid(samples: Dict[int, list], columns: Optional[int] = None) -> Figure:
    """One row per class: the sample faces (examples.Face), each with its source beneath."""
    columns = columns or max([len(v) for v in samples.values()] + [1])
    figure = Figure(figsize=(1.0 * columns + 1.2, 1.15 * len(dc.EMOTIONS)))
    axes = figure.subplots(len(dc.EMOTIONS), columns, squeeze=False)
    for emotion, row in enumerate(axes):
        faces = samples.get(emotion, [])
        for j, ax in enumerate(row):
            ax.set_xticks([])
            ax.set_yticks([])
            ax.spines[:].set_visible(False)
            if j < len(faces):
                ax.imshow(faces[j].pixels, cmap="gray", vmin=0, vmax=255)
                ax.set_xlabel(faces[j].source, fontsize=7, labelpad=1)
        row[0].set_ylabel(dc.EMOTIONS[emotion] + ("" if faces else "\n(none)"),
                          rotation=0, ha="right", va="center", fontsize=9)
    figure.subplots_adjust(wspace=0.05, hspace=0.35)
    return figure


def pixel_histograms(histograms: Dict[str, np.ndarray]) -> Figure:
    """Intensity distributions (share of pixels per level 0..255): by split, and by source."""
    figure = Figure(figsize=(10, 3))
    by_split, by_source = figure.subplots(1, 2, sharey=True)
    for ax, prefix, title in ((by_split, "split:", "by split"), (by_source, "source:", "by source")):
        for key, counts in histograms.items():
            if key.startswith(prefix):
                name = key[len(prefix):]
                share = counts / max(counts.sum(), 1)
                ax.plot(np.arange(256), share, label=name, lw=1.2,
                        color={**SPLIT_COLOURS, **SOURCE_COLOURS}.get(name))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("intensity")
        ax.set_xlim(0, 255)
        ax.legend(frameon=False, fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    by_split.set_ylabel("share of pixels")
    return figure


def confusion_matrix(matrix: pd.DataFrame) -> Figure:
    """Counts, coloured by the share of each true class (rows), so small classes stay visible."""
    counts = matrix.values.astype(float)
    row_share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure = Figure(figsize=(6, 5))
    ax = figure.subplots()
    image = ax.imshow(row_share, cmap="Blues", vmin=0, vmax=1)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(j, i, f"{counts[i, j]:.0f}", ha="center", va="center", fontsize=9,
                    color="white" if row_share[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(matrix.columns)), matrix.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(matrix.index)), matrix.index)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    figure.colorbar(image, ax=ax, label="share of true class")
    return figure


def per_class_bars(per_class: pd.DataFrame) -> Figure:
    """Precision and recall side by side for each class."""
    figure = Figure(figsize=(8, 3))
    ax = figure.subplots()
    x = np.arange(len(per_class))
    ax.bar(x - 0.2, per_class["precision"], 0.4, label="precision", color="#4c72b0")
    ax.bar(x + 0.2, per_class["recall"], 0.4, label="recall", color="#dd8452")
    ax.set_xticks(x, per_class.index)
    ax.set_ylim(0, 1.05)
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.spines[["top", "right"]].set_visible(False)
    return figure


def image_grid(images: Sequence[np.ndarray], titles: Sequence[str], columns: int = 8) -> Figure:
    """Faces (0..255) in rows of `columns`, a short title over each."""
    rows = max(1, -(-len(images) // columns))
    figure = Figure(figsize=(1.25 * columns, 1.5 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < len(images):
            ax.imshow(np.squeeze(images[k]), cmap="gray", vmin=0, vmax=255)
            ax.set_title(titles[k], fontsize=7)
    figure.subplots_adjust(wspace=0.1, hspace=0.45)
    return figure


def attention_pairs(inputs: Sequence[np.ndarray], attended: Sequence[np.ndarray], titles: List[str],
                    pairs_per_row: int = 4) -> Figure:
    """Each input face beside what the spatial transformer makes of it, both on the input's grey
    scale (model inputs are z-scores; the transformer reads zeros, mid-grey, outside the image)."""
    rows = max(1, -(-len(inputs) // pairs_per_row))
    figure = Figure(figsize=(1.25 * 2 * pairs_per_row, 1.5 * rows))
    axes = figure.subplots(rows, 2 * pairs_per_row, squeeze=False).ravel()
    for ax in axes:
        ax.axis("off")
    for k, (image, warped, title) in enumerate(zip(inputs, attended, titles)):
        low, high = float(np.min(image)), float(np.max(image))
        for ax, picture, label in ((axes[2 * k], image, title), (axes[2 * k + 1], warped, "attended")):
            ax.imshow(np.squeeze(picture), cmap="gray", vmin=low, vmax=high)
            ax.set_title(label, fontsize=7)
    figure.subplots_adjust(wspace=0.1, hspace=0.35)
    return figure


def reliability(buckets: pd.DataFrame, title: str) -> Figure:
    """Reliability diagram: share of true labels against mean probability per bucket (the diagonal is
    perfect calibration); bar widths are the buckets, the numbers their entries."""
    figure = Figure(figsize=(4.2, 4.0))
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1)
    if len(buckets):
        axes.bar(buckets["lower"], buckets["true share"], width=buckets["upper"] - buckets["lower"], align="edge",
                 color="#4c78a8", alpha=0.75, edgecolor="white", label="share of true labels")
        axes.plot(buckets["mean probability"], buckets["true share"], "o", color="#e45756", markersize=3,
                  label="bucket mean")
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability", ylabel="share of true labels", title=title)
    axes.legend(loc="upper left", fontsize=8)
    return figure


def frames_with_boxes(frames: Sequence[Optional[np.ndarray]], boxes: Sequence[Sequence[float]],
                      squares: Sequence[Sequence[float]], crops: Sequence[np.ndarray], titles: Sequence[str]) -> Figure:
    """Each source frame with the detector's box (orange) and the FER2013-framed crop square (blue),
    beside the 48x48 crop the model trains on."""
    figure = Figure(figsize=(6.4, 2.6 * len(crops)))
    axes = figure.subplots(len(crops), 2, squeeze=False, gridspec_kw={"width_ratios": [3, 1]})
    for row, (frame, box, square, face, title) in enumerate(zip(frames, boxes, squares, crops, titles)):
        left, right = axes[row]
        if frame is None:
            left.text(0.5, 0.5, "source frame not readable here", ha="center", va="center")
        else:
            left.imshow(frame, cmap="gray", vmin=0, vmax=255)
            left.add_patch(Rectangle(box[:2], box[2], box[3], fill=False, edgecolor="#f58518", linewidth=1.5))
            left.add_patch(Rectangle(square[:2], square[2], square[3], fill=False, edgecolor="#4c78a8",
                                     linewidth=1.5, linestyle="--"))
        left.set_title(title, fontsize=8)
        right.imshow(face, cmap="gray", vmin=0, vmax=255)
        right.set_title("48x48 crop", fontsize=8)
        for ax in (left, right):
            ax.set_axis_off()
    return figure
