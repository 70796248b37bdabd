"""The in-memory form of detection data: `DetectionRecord` (one image and its boxes), `DetectionData`, and
the box checks every reader applies (errors are `DataError`s naming the file and line; `Problems` gathers
a whole file set's into one).

Boxes a little past the image border (at most max(2 px, 2% of the side)) are clipped to it with one warning
per load; `strict=True` refuses them. Boxes further out, empty or inverted are errors.

Boxes are float32 pixel `(x_min, y_min, x_max, y_max)`; class ids index the dataset's class names.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from toolkit.data.errors import DataError

logger = logging.getLogger(__name__)

MAX_PROBLEMS = 20  # problems listed in one DataError (then "... and N more")
NOISE_PIXELS = 0.5  # past the border by at most this (rounding): clipped silently
CLIP_PIXELS, CLIP_FRACTION = 2.0, 0.02  # past it by at most max(2 px, 2% of the side): clipped with a warning
CLIP_RULE = "max(2 px, 2% of the side)"


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


class Problems:
    """The problems found in a whole annotation file set, raised together as one `DataError`.

    Readers `add` each bad annotation's message (naming file:line or the annotation id) and go on with the
    next one, so a user fixes every problem in one pass; `raise_if_any` raises them together (the first
    `limit`, then `... and N more`). `clipped` collects where boxes were clipped to the image border
    (`check_box`); `warn_clipped` logs them as one warning.

    Examples:
    >>> problems = Problems("labels/")
    >>> for i in range(3):
    ...     problems.add(f"a.txt:{i + 1}: unknown class id 7")
    >>> problems.raise_if_any()
    Traceback (most recent call last):
    ...
    toolkit.data.errors.DataError: 3 problems in labels/:
      a.txt:1: unknown class id 7
      a.txt:2: unknown class id 7
      a.txt:3: unknown class id 7
    """

    def __init__(self, source: str, limit: int = MAX_PROBLEMS):
        self.source, self.limit = source, limit
        self.messages, self.clipped = [], []

    def add(self, message) -> None:
        self.messages.append(str(message))

    def __len__(self) -> int:
        return len(self.messages)

    def raise_if_any(self) -> None:
        """Raises one DataError (its `.problems` holds every message) when any problem was added."""
        if not self.messages:
            return
        if len(self.messages) == 1:
            error = DataError(self.messages[0])
        else:
            shown = self.messages[:self.limit]
            more = len(self.messages) - len(shown)
            error = DataError(f"{len(self.messages)} problems in {self.source}:\n  " + "\n  ".join(shown)
                              + (f"\n  ... and {more} more" if more else ""))
        error.problems = list(self.messages)
        raise error

    def warn_clipped(self) -> None:
        """One warning naming the source, how many boxes were clipped and where (the first 10)."""
        if not self.clipped:
            return
        where = ", ".join(self.clipped[:10]) + (f", ... and {len(self.clipped) - 10} more" if len(self.clipped) > 10
                                                 else "")
        logger.warning("%s: clipped %d box(es) extending past the image border by at most %s to the image "
                       "(strict=True refuses them): %s", self.source, len(self.clipped), CLIP_RULE, where)


def check_record(record: DetectionRecord, class_count: int, where: str, strict: bool = False) -> np.ndarray:
    """The record's boxes clipped to the image (`check_box`); one DataError (naming `where`) lists every box
    outside the image, empty box and unknown class."""
    problems, boxes = Problems(where), []
    for box, cls in zip(record.boxes, record.classes):
        try:
            boxes.append(check_box(box, record.width, record.height, where, strict=strict))
            if not 0 <= int(cls) < class_count:
                raise DataError(f"{where}: unknown class id {int(cls)} (the dataset has {class_count} classes)")
        except DataError as error:
            problems.add(error)
    problems.raise_if_any()
    return np.asarray(boxes, np.float32).reshape(-1, 4)


def check_box(box, width, height, where: str, strict: bool = False, clipped: list | None = None,
              noise: float = NOISE_PIXELS, shown=None) -> list:
    """The box clipped to the `width` x `height` image, or a DataError naming `where`.

    A box past the border by at most `noise` pixels (rounding) is clipped silently. One past it by at most
    `CLIP_RULE` (max(2 px, 2% of that side): annotation tools often put the far edge one pixel out) is
    clipped and `where` appended to `clipped` for the caller's one warning, or with `strict=True` refused.
    An empty or inverted box, one further out, or one with nothing left inside the image is an error.
    `shown` is how the message shows the box (default: its pixel xyxy).

    Examples:
    >>> check_box([0, 0, 41, 32], 40, 32, "a.xml:3")
    [0.0, 0.0, 40.0, 32.0]
    >>> check_box([0, 0, 41, 32], 40, 32, "a.xml:3", strict=True)
    Traceback (most recent call last):
    ...
    toolkit.data.errors.DataError: a.xml:3: box [0.0, 0.0, 41.0, 32.0] lies outside the 40x32 image (by 1 px; ...)
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    shown = [x0, y0, x1, y1] if shown is None else shown
    if not (x1 > x0 and y1 > y0):
        raise DataError(f"{where}: empty or inverted box {shown} (need x_min < x_max, y_min < y_max)")
    over_x, over_y = max(-x0, x1 - width, 0.0), max(-y0, y1 - height, 0.0)
    overshoot = max(over_x, over_y)
    if overshoot > noise:
        past = f"by {overshoot:.3g} px; "
        if strict:
            raise DataError(f"{where}: box {shown} lies outside the {width}x{height} image ({past}strict=True "
                            "refuses any box past the edge)")
        if over_x > _clip_limit(width) or over_y > _clip_limit(height):
            raise DataError(f"{where}: box {shown} lies outside the {width}x{height} image ({past}only boxes "
                            f"past the edge by at most {CLIP_RULE} are clipped)")
    w, h = float(width), float(height)
    clip = [min(max(x0, 0.0), w), min(max(y0, 0.0), h), min(max(x1, 0.0), w), min(max(y1, 0.0), h)]
    if not (clip[2] > clip[0] and clip[3] > clip[1]):
        raise DataError(f"{where}: box {shown} lies outside the {width}x{height} image (nothing of it is inside)")
    if overshoot > noise and clipped is not None:
        clipped.append(where)
    return clip


def _clip_limit(side) -> float:
    return max(CLIP_PIXELS, CLIP_FRACTION * float(side))
