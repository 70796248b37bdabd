"""The in-memory form of detection data: `DetectionRecord` (one image and its boxes), `DetectionData`, and
the box checks every reader applies (errors are `DataError`s naming the file and line).

Boxes are float32 pixel `(x_min, y_min, x_max, y_max)`; class ids index the dataset's class names.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from toolkit.data.errors import DataError


@dataclasses.dataclass
class DetectionRecord:
    """One image and its objects.

    Attributes:
        image: path of the image file (or None when `pixels` holds the image).
        width: image width in pixels.
        height: image height in pixels.
        boxes: float32 `[k, 4]` pixel `(x_min, y_min, x_max, y_max)`.
        classes: int32 `[k]` class ids (index into the dataset's class names).
        pixels: optional uint8 `[H, W, C]` image already in memory.
    """

    image: str | None
    width: int
    height: int
    boxes: np.ndarray
    classes: np.ndarray
    pixels: np.ndarray | None = None


@dataclasses.dataclass
class DetectionData:
    """A detection dataset: records + class names (index = class id)."""

    records: list
    class_names: list

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split(self, fraction: float, seed: int = 0):
        """`(rest, held_out)` with `fraction` of the records held out (shuffled with `seed`)."""
        order = np.random.default_rng(seed).permutation(len(self.records))
        n = int(round(len(order) * fraction))
        pick = lambda idx: DetectionData([self.records[i] for i in sorted(idx)], list(self.class_names))  # noqa: E731
        return pick(order[n:]), pick(order[:n])

    def all_boxes(self) -> np.ndarray:
        return np.concatenate([r.boxes for r in self.records] or [np.zeros((0, 4), np.float32)], 0)


def check_record(record: DetectionRecord, class_count: int, where: str) -> None:
    """Raises DataError (naming `where`) for a box outside the image, an empty box or an unknown class."""
    for box, cls in zip(record.boxes, record.classes):
        check_box(box, record.width, record.height, where)
        if not 0 <= int(cls) < class_count:
            raise DataError(f"{where}: unknown class id {int(cls)} (the dataset has {class_count} classes)")


def check_box(box, width, height, where: str, tolerance: float = 0.5) -> None:
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x1 > x0 and y1 > y0):
        raise DataError(f"{where}: empty or inverted box {[x0, y0, x1, y1]} (need x_min < x_max, y_min < y_max)")
    if x0 < -tolerance or y0 < -tolerance or x1 > width + tolerance or y1 > height + tolerance:
        raise DataError(f"{where}: box {[x0, y0, x1, y1]} lies outside the {width}x{height} image")
