"""Writes segmentation data as image + mask folders (the layout `load_segmentation_dataset` reads),
and draws coloured mask overlays.

    from toolkit.data.samples import digit_scenes
    write_segmentation_folder(digit_scenes(1000, image_size=64), "data/scenes/train")
"""

from __future__ import annotations

import os

import numpy as np

from toolkit.data.masks import default_palette


def write_segmentation_folder(data, directory: str, class_names=None, palette=None, colour_masks: bool = False) -> str:
    """Saves images and masks as `directory/images/NNNNN.png`, `directory/masks/NNNNN.png`, `classes.txt`.

    Args:
        data: `toolkit.data.scenes.Scenes` (class list = background + its class names) or
            `(images uint8 [N, H, W(, C)], masks [N, H, W])`.
        directory: output folder (created; existing files with the same names are overwritten).
        class_names: names, index = class id (0 = background); default from `data` or "background", "1", ...
        palette: `[K, 3]` colours written into classes.txt (default: `default_palette`).
        colour_masks: write masks as RGB colour images (mapped back through the palette on load)
            instead of grey class-index PNGs.

    Returns:
        `directory`.

    Examples:
    >>> import numpy as np
    >>> x = np.zeros((2, 8, 8, 3), "uint8"); y = np.ones((2, 8, 8), "uint8")
    >>> d = write_segmentation_folder((x, y, ["background", "thing"]), "shapes")
    >>> sorted(os.listdir(d))
    ['classes.txt', 'images', 'masks']
    """
    from PIL import Image

    if hasattr(data, "images") and hasattr(data, "masks"):
        images, masks = data.images, data.masks
        class_names = class_names or ["background", *getattr(data, "class_names", [])]
    else:
        images, masks = data[0], data[1]
        if len(data) > 2 and class_names is None:
            class_names = list(data[2])
    images, masks = np.asarray(images), np.asarray(masks)
    if len(images) != len(masks):
        raise ValueError(f"{len(images)} images but {len(masks)} masks")
    if class_names is None:
        class_names = ["background"] + [str(i) for i in range(1, int(masks.max()) + 1)]
    if int(masks.max()) >= len(class_names) or int(masks.min()) < 0:
        raise ValueError(f"masks hold class ids outside 0..{len(class_names) - 1}")
    palette = np.asarray(palette if palette is not None else default_palette(len(class_names)), np.uint8)
    for folder in ("images", "masks"):
        os.makedirs(os.path.join(directory, folder), exist_ok=True)
    width = max(5, len(str(len(images))))
    for index, (image, mask) in enumerate(zip(images, masks)):
        name = f"{index:0{width}d}.png"
        image = np.clip(image, 0, 255).astype(np.uint8)
        Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image).save(
            os.path.join(directory, "images", name))
        mask_image = palette[mask] if colour_masks else mask.astype(np.uint8)
        Image.fromarray(mask_image).save(os.path.join(directory, "masks", name))
    with open(os.path.join(directory, "classes.txt"), "w") as f:
        for name, colour in zip(class_names, palette):
            f.write(f"{name} {int(colour[0])} {int(colour[1])} {int(colour[2])}\n")
    return directory


def colorize(mask, palette=None) -> np.ndarray:
    """Class ids `[H, W]` -> uint8 RGB `[H, W, 3]` through the palette (ids < 0 are black)."""
    mask = np.asarray(mask)
    palette = np.asarray(palette if palette is not None else default_palette(int(mask.max()) + 1), np.uint8)
    return np.where((mask >= 0)[..., None], palette[np.clip(mask, 0, len(palette) - 1)], 0).astype(np.uint8)


def overlay(image, mask, palette=None, alpha: float = 0.5, class_names=None) -> np.ndarray:
    """Blends the coloured mask over the image (background pixels, class 0, are left as they are).

    Args:
        image: `[H, W]` or `[H, W, C]` pixels in [0, 255].
        mask: `[H, W]` class ids, the image's size.
        palette: `[K, 3]` colours.
        alpha: mask opacity.
        class_names: names, index = class id; when given, a legend strip (colour -> name of each class in
            the mask) is added under the image (see `with_legend`).
    """
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    image = image[..., :3]
    colours = colorize(mask, palette).astype(np.float32)
    foreground = (np.asarray(mask) > 0)[..., None]
    blended = np.where(foreground, (1 - alpha) * image + alpha * colours, image)
    blended = np.clip(blended, 0, 255).astype(np.uint8)
    if class_names is None:
        return blended
    return with_legend(blended, class_names, palette, ids=np.unique(np.asarray(mask)))


LEGEND_MIN_WIDTH = 128  # narrower pictures are padded (white, on the right) so the names stay readable


def with_legend(picture, class_names, palette=None, ids=None) -> np.ndarray:
    """`picture` (uint8 `[H, W, 3]`) with a legend strip under it: a colour swatch and the name of each class
    in `ids` (default: every class but the background, id 0), wrapped into rows.

    Examples:
    >>> out = with_legend(np.zeros((8, 8, 3), np.uint8), ["background", "cat", "dog"])
    >>> out.shape[0] > 8, out.shape[1] == LEGEND_MIN_WIDTH, out.dtype.name
    (True, True, 'uint8')
    """
    from PIL import Image, ImageDraw

    picture = np.asarray(picture, np.uint8)
    palette = np.asarray(palette if palette is not None else default_palette(len(class_names)), np.uint8)
    ids = [int(k) for k in (range(1, len(class_names)) if ids is None else ids) if 0 < int(k) < len(class_names)]
    height, width = picture.shape[:2]
    width_out = max(width, LEGEND_MIN_WIDTH)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    entries = [(k, str(class_names[k]), 16 + int(probe.textlength(str(class_names[k])))) for k in ids] or [
        (None, "no foreground", 4 + int(probe.textlength("no foreground")))]
    rows, row, used = [], [], 0
    for entry in entries:
        if row and used + entry[2] > width_out - 4:
            rows.append(row)
            row, used = [], 0
        row.append(entry)
        used += entry[2] + 6
    rows.append(row)
    line = 14
    canvas = Image.new("RGB", (width_out, height + line * len(rows) + 4), (255, 255, 255))
    canvas.paste(Image.fromarray(picture), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        x, y = 2, height + 3 + r * line
        for k, name, size in row:
            if k is not None:
                draw.rectangle([x, y + 1, x + 10, y + 11], fill=tuple(int(v) for v in palette[k]), outline=(0, 0, 0))
                draw.text((x + 14, y), name, fill=(0, 0, 0))
            else:
                draw.text((x + 2, y), name, fill=(96, 96, 96))
            x += size + 6
    return np.asarray(canvas)
