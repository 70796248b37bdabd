"""PNG output of `toolkit.inspect`: image grids, heatmap overlays, curves."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from toolkit.metrics.plots import save_figure  # noqa: E402


def to_display(image) -> np.ndarray:
    """Rescales an image to [0, 1] for display (min-max per image); 1-channel images are squeezed."""
    image = np.asarray(image, "float64")
    lo, hi = image.min(), image.max()
    image = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
    return image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image


def save_grid(images, path: str, titles=None, columns: int | None = None, title: str = "", scale: float = 1.6) -> str:
    """Saves images (each rescaled to [0, 1]) as a grid PNG."""
    images = list(images)
    if not images:
        raise ValueError("no images to plot")
    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(scale * columns, scale * rows + (0.4 if title else 0)),
                             squeeze=False)
    for index, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if index < len(images):
            ax.imshow(to_display(images[index]), cmap="gray", interpolation="nearest")
            if titles is not None:
                ax.set_title(str(titles[index]), fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def save_heatmap(image, heatmap, path: str, title: str = "", alpha: float = 0.5) -> str:
    """Saves the image and the heatmap (resized to the image) side by side and overlaid."""
    import tensorflow as tf

    image = to_display(image)
    heat = np.asarray(heatmap, "float32")
    if heat.shape[:2] != image.shape[:2]:
        heat = tf.image.resize(heat[..., None], image.shape[:2]).numpy()[..., 0]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    for ax in axes:
        ax.axis("off")
    axes[0].imshow(image, cmap="gray")
    axes[0].set_title("input", fontsize=8)
    shown = axes[1].imshow(heat, cmap="jet")
    fig.colorbar(shown, ax=axes[1], fraction=0.046)
    axes[1].set_title(title or "map", fontsize=8)
    axes[2].imshow(image, cmap="gray")
    axes[2].imshow(heat, cmap="jet", alpha=alpha)
    axes[2].set_title("overlay", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def save_curve(x, ys: dict, path: str, xlabel: str, ylabel: str, title: str = "") -> str:
    """Line plot of one or more series over `x`."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, y in ys.items():
        ax.plot(x, y, "o-", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)



def class_label(index: int, class_names=None) -> str:
    """How a plot names a class: `"2 (cat)"` when the model's class names are known, else `"2"`.

    Examples:
    >>> class_label(1, ["cat", "dog"]), class_label(1), class_label(5, ["cat"])
    ('1 (dog)', '1', '5')
    """
    index = int(index)
    if class_names is not None and 0 <= index < len(class_names):
        return f"{index} ({class_names[index]})"
    return str(index)
