"""Detection / segmentation scenes made of real digit or Fashion-MNIST images pasted on a canvas.

No installable package ships a real detection or segmentation dataset, so the toolkit's offline
benchmark data is generated: real object images, random count, scale and position, limited overlap,
optional clutter, with exact boxes (tight around each object's pixels) and per-pixel masks.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from toolkit.data.image_samples import digits, fashion_mnist
from toolkit.data.iou import numpy_iou


@dataclasses.dataclass
class Scenes:
    """Generated scenes.

    Attributes:
        images: uint8 `[N, H, W, C]`.
        boxes: list of float32 `[k_i, 4]` boxes in pixel `(x_min, y_min, x_max, y_max)`, max exclusive.
        classes: list of int32 `[k_i]` class ids (index into `class_names`).
        masks: uint8 `[N, H, W]` semantic masks: 0 = background, `class id + 1` for object pixels
            (a later-pasted object covers an earlier one).
        instance_masks: list of bool `[k_i, H, W]` per-object masks (visible pixels).
        class_names: the object class names (background excluded).
    """

    images: np.ndarray
    boxes: list
    classes: list
    masks: np.ndarray
    instance_masks: list
    class_names: list

    def __len__(self) -> int:
        return len(self.images)


def _source_images(source: str, split: str):
    if source == "digits":
        x, y, names = digits()
    elif source == "fashion_mnist":
        x, y, names = fashion_mnist(split)
    else:
        raise ValueError(f"source must be 'digits' or 'fashion_mnist'. Received: source={source!r}")
    return x[..., 0], y, names


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def digit_scenes(
    count: int,
    image_size: int = 128,
    objects: tuple = (1, 5),
    object_size: tuple = (24, 48),
    source: str = "digits",
    split: str = "train",
    classes: list | None = None,
    max_overlap: float = 0.3,
    clutter: int = 0,
    channels: int = 3,
    threshold: int = 64,
    seed: int = 0,
) -> Scenes:
    """Generates `count` scenes.

    Args:
        count: number of scenes.
        image_size: canvas side in pixels.
        objects: `(min, max)` objects per scene (inclusive).
        object_size: `(min, max)` pasted object side in pixels.
        source: `"digits"` (scikit-learn's 8x8 digits, always offline) or `"fashion_mnist"`.
        split: source split for Fashion-MNIST (`"train"` / `"test"`): keep test scenes from test images.
        classes: restrict to these source class ids (default: all); ids are re-numbered 0..k-1.
        max_overlap: max IoU between any two object boxes in a scene.
        clutter: number of unlabelled distractor strokes per scene.
        channels: 1 (grey) or 3 (each object gets a random colour tint).
        threshold: pixel value above which an object pixel belongs to its mask.
        seed: random seed.

    Examples:
    >>> s = digit_scenes(2, image_size=64, objects=(1, 2), object_size=(16, 24))
    >>> s.images.shape, s.masks.shape
    ((2, 64, 64, 3), (2, 64, 64))
    """
    if objects[0] < 0 or objects[1] < objects[0]:
        raise ValueError(f"objects must be (min, max) with 0 <= min <= max. Received: objects={objects}")
    if object_size[1] > image_size:
        raise ValueError(f"object_size max {object_size[1]} exceeds image_size {image_size}")
    rng = np.random.default_rng(seed)
    pool_x, pool_y, names = _source_images(source, split)
    if classes is not None:
        keep = np.isin(pool_y, classes)
        remap = {c: i for i, c in enumerate(classes)}
        pool_x, pool_y = pool_x[keep], np.array([remap[int(c)] for c in pool_y[keep]])
        names = [names[c] for c in classes]
    images = np.zeros((count, image_size, image_size, channels), np.uint8)
    masks = np.zeros((count, image_size, image_size), np.uint8)
    all_boxes, all_classes, all_instances = [], [], []
    for n in range(count):
        canvas = np.zeros((image_size, image_size, channels), np.float32)
        for _ in range(clutter):
            _draw_stroke(canvas, rng)
        boxes, labels, instances = [], [], []
        for _ in range(rng.integers(objects[0], objects[1] + 1)):
            for _attempt in range(20):
                side = int(rng.integers(object_size[0], object_size[1] + 1))
                x0, y0 = (int(v) for v in rng.integers(0, image_size - side + 1, size=2))
                index = int(rng.integers(len(pool_x)))
                patch = _resize(pool_x[index], side)
                ys, xs = np.nonzero(patch > threshold)
                if len(xs) == 0:
                    continue
                box = np.array([x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1], np.float32)
                if boxes and _max_iou(box, np.array(boxes)) > max_overlap:
                    continue
                tint = rng.uniform(0.5, 1.0, size=channels) if channels == 3 else np.ones(1)
                region = canvas[y0 : y0 + side, x0 : x0 + side]
                np.maximum(region, patch[..., None].astype(np.float32) * tint, out=region)
                instance = np.zeros((image_size, image_size), bool)
                instance[y0 : y0 + side, x0 : x0 + side] = patch > threshold
                for earlier in instances:  # the new object covers earlier ones
                    earlier &= ~instance
                masks[n][instance] = int(pool_y[index]) + 1
                boxes.append(box)
                labels.append(int(pool_y[index]))
                instances.append(instance)
                break
        images[n] = np.clip(canvas, 0, 255).astype(np.uint8)
        all_boxes.append(np.array(boxes, np.float32).reshape(-1, 4))
        all_classes.append(np.array(labels, np.int32))
        all_instances.append(np.array(instances, bool).reshape(-1, image_size, image_size))
    return Scenes(images, all_boxes, all_classes, masks, all_instances, list(names))


def _draw_stroke(canvas, rng):
    size = canvas.shape[0]
    x0, y0, x1, y1 = rng.integers(0, size, size=4)
    steps = max(abs(x1 - x0), abs(y1 - y0), 1)
    xs = np.linspace(x0, x1, steps).astype(int)
    ys = np.linspace(y0, y1, steps).astype(int)
    canvas[ys, xs] = np.maximum(canvas[ys, xs], rng.uniform(60, 160))


def _max_iou(box, others) -> float:
    return float(np.max(numpy_iou(box, others, dtype=np.float32)))  # float32, as the boxes
