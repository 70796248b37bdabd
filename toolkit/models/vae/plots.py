"""PNG views of a VAE: reconstructions, prior samples, latent interpolation, latent scatter, 2-D manifold."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _batched(fn, x, batch=512):
    return np.concatenate([np.asarray(fn(x[i : i + batch])) for i in range(0, len(x), batch)])


def _save(fig, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def image_grid(images, path: str, cols: int = 8, title: str = "", row_labels=None) -> str:
    """Saves `[N, H, W, C]` images in [0, 1] as a grid PNG (grey for C=1)."""
    images = np.clip(np.asarray(images, "float32"), 0, 1)
    rows = int(np.ceil(len(images) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.1 + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            image = images[i]
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
    if row_labels:
        for r, label in enumerate(row_labels[:rows]):
            axes[r, 0].set_title(label, fontsize=7, loc="left")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def vae_plots(model, pixels, labels, directory: str, class_names=None, seed: int = 0) -> dict:
    """Writes the VAE's PNGs into `directory` and returns `{name: path}`.

    Args:
        model: a `VAE` (`encode`, `decode`, `prior_latents`).
        pixels: held-out images `[N, H, W, C]` in [0, 255].
        labels: int labels `[N]` or None (no scatter without labels).
        directory: output folder.
        class_names: legend names for the scatter.
        seed: seed of the picked images and prior samples.
    """
    pixels = np.asarray(pixels, "float32")
    rng = np.random.default_rng(seed)
    plots = {}
    pick = rng.choice(len(pixels), min(16, len(pixels)), replace=False)
    originals = model.targets(pixels[pick]).numpy()
    recon = model.decode(model.encode(pixels[pick])[0]).numpy()
    pairs = np.concatenate([originals[:8], recon[:8], originals[8:], recon[8:]])
    plots["reconstructions"] = image_grid(pairs, os.path.join(directory, "reconstructions.png"),
                                          title="rows 1, 3: inputs (model targets); rows 2, 4: reconstructions")
    z = model.prior_latents(np.arange(64, dtype="int32") + seed).numpy()
    plots["samples"] = image_grid(model.decode(z).numpy(), os.path.join(directory, "samples.png"),
                                  title="samples from the prior z ~ N(0, I)")
    ends = rng.choice(len(pixels), 8, replace=len(pixels) < 8)
    mu = model.encode(pixels[ends])[0].numpy()
    steps = np.linspace(0, 1, 10)[None, :, None]
    path_z = (mu[0::2, None] * (1 - steps) + mu[1::2, None] * steps).reshape(-1, mu.shape[-1])
    plots["interpolation"] = image_grid(model.decode(path_z).numpy(), os.path.join(directory, "interpolation.png"),
                                        cols=10, title="linear interpolation between the means of two images")
    if labels is not None and len(labels):
        plots["latent_scatter"] = latent_scatter(
            _batched(lambda b: model.encode(b)[0], pixels[:5000]), np.asarray(labels)[:5000],
            os.path.join(directory, "latent_scatter.png"), class_names)
    if model.latent_dim == 2:
        from scipy.stats import norm

        grid = norm.ppf(np.linspace(0.05, 0.95, 12))
        zs = np.array([[a, b] for b in grid[::-1] for a in grid], "float32")
        plots["manifold"] = image_grid(model.decode(zs).numpy(), os.path.join(directory, "manifold.png"), cols=12,
                                       title="decoded 2-D latent grid (Gaussian quantiles 5%..95%)")
    return plots


def latent_scatter(mu, labels, path: str, class_names=None) -> str:
    """Scatter of the encoder means coloured by label; PCA to 2-D when the latent has more dimensions."""
    mu = np.asarray(mu)
    title = "encoder means mu (2-D latent)"
    if mu.shape[1] > 2:
        from sklearn.decomposition import PCA

        mu = PCA(2, random_state=0).fit_transform(mu)
        title = "encoder means mu, first two principal components"
    elif mu.shape[1] == 1:
        mu = np.concatenate([mu, np.zeros_like(mu)], axis=1)
    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("tab10" if len(np.unique(labels)) <= 10 else "tab20")
    for cls in np.unique(labels):
        sel = labels == cls
        name = class_names[int(cls)] if class_names is not None and int(cls) < len(class_names) else str(cls)
        ax.scatter(mu[sel, 0], mu[sel, 1], s=3, alpha=0.6, color=cmap(int(cls) % cmap.N), label=name)
    ax.legend(markerscale=4, fontsize=7, loc="best")
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)
