"""Labelled numeric arrays for the 1D / 3D classifiers: sequences `(T, C)` and volumes `(D, H, W, C)`.

Two on-disk forms, the same conventions as the image sources (`toolkit.data.sources`):

- a `.npz` file with `x` (`[N, T, C]`, `[N, T]` or `[N, D, H, W, C]`), `y` (`[N]` integer class ids, or
  strings: the class names, sorted) and optional `class_names` (`[K]`, names in id order), the keys an
  image `.npz` has;
- a folder of class sub-folders of `.npy` files, one sample per file (`signals/walk/0001.npy`), the folder
  name being the class, as an image folder is.

In Python, `(x, y[, class_names])` tuples work too. The rank of one sample picks the model
(`model_of`): `(T, C)` a Conv1D classifier, `(D, H, W, C)` a Conv3D one; a `(T,)` sample is `(T, 1)`. Every
check of bad data (a missing key, mixed shapes, a wrong rank, NaN / inf, one class, labels outside the class
list) is a `DataError` naming the file, key or value.

    data = read_arrays("signals.npz")                # or read_arrays("signals/")
    data.x.shape, data.class_names, model_of(data.sample_shape)
    ((120, 200, 3), ['run', 'walk'], 'conv1d')
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from toolkit.data.errors import DataError

ARRAY_FORMS = ("a .npz file with arrays x, y (optional class_names), or a folder of class sub-folders of .npy "
               "files (one sample per file, the folder name is the class)")
_MODELS = {2: "conv1d", 4: "conv3d"}
_SHAPES = "a sequence (T, C) or (T,), or a volume (D, H, W, C)"


@dataclasses.dataclass
class ArrayData:
    """Samples `x` (float32 `[N, *sample_shape]`), labels `y` (int64 `[N]`, or None), class names, and where
    each sample came from (`where[i]`: `file.npz[x][i]` or the `.npy` path), for error messages."""

    x: np.ndarray
    y: np.ndarray | None
    class_names: list
    where: list

    @property
    def sample_shape(self) -> tuple:
        return tuple(int(d) for d in self.x.shape[1:])


def model_of(sample_shape) -> str:
    """`(T, C)` -> `"conv1d"`, `(D, H, W, C)` -> `"conv3d"`.

    >>> model_of((100, 3)), model_of((8, 16, 16, 1))
    ('conv1d', 'conv3d')
    """
    rank = len(tuple(sample_shape))
    if rank not in _MODELS:
        raise DataError(f"one sample must be {_SHAPES}. Received: sample shape {tuple(sample_shape)}")
    return _MODELS[rank]


def as_sample(array, where: str) -> np.ndarray:
    """One sample -> float32 `(T, C)` or `(D, H, W, C)` (a `(T,)` sample becomes `(T, 1)`), finite values only."""
    array = np.asarray(array)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim not in _MODELS:
        hint = " (a (D, H, W) volume needs its channel axis: reshape it to (D, H, W, 1))" if array.ndim == 3 else ""
        raise DataError(f"{where}: one sample must be {_SHAPES}. Received: shape {array.shape}{hint}")
    return _finite(_float(array, where), where)


def _float(array: np.ndarray, where: str) -> np.ndarray:
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise DataError(f"{where}: values must be numbers. Received: dtype {array.dtype}")
    return array.astype("float32")


def _finite(x: np.ndarray, where) -> np.ndarray:
    """`where`: a name, or a list naming each sample along axis 0."""
    bad = ~np.isfinite(x)
    if bad.any():
        index = np.argwhere(bad)[0]
        value = x[tuple(index)]
        if isinstance(where, list):
            raise DataError(f"{where[int(index[0])]}: value {value} at index {tuple(int(i) for i in index[1:])}; "
                            "the samples must be finite (no NaN / inf): fill or drop them")
        raise DataError(f"{where}: value {value} at index {tuple(int(i) for i in index)}; the samples must be "
                        "finite (no NaN / inf): fill or drop them")
    return x


def read_arrays(source, class_names=None, sample_shape=None, require_labels: bool = True) -> ArrayData:
    """A `.npz` file, a folder of class sub-folders of `.npy` files, or `(x, y[, class_names])` -> `ArrayData`.

    Args:
        source: the data (see the module docstring).
        class_names: the class list to map labels onto (evaluation data: the training classes); a name outside
            it is an error naming it.
        sample_shape: the shape every sample must have (evaluation data: the training shape).
        require_labels: labels must be present and hold at least two classes.
    """
    if isinstance(source, (tuple, list)) and len(source) in (2, 3):
        x, y = np.asarray(source[0]), np.asarray(source[1])
        data = _from_arrays(x, y, list(source[2]) if len(source) == 3 else None, "x")
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if path.lower().endswith(".npz"):
            data = _from_npz(path, require_labels)
        elif os.path.isdir(path):
            data = _from_folder(path)
        elif os.path.isfile(path):
            raise DataError(f"{path!r}: data is {ARRAY_FORMS}")
        else:
            raise DataError(f"data {path!r} does not exist (data is {ARRAY_FORMS})")
    else:
        raise DataError(f"data must be {ARRAY_FORMS}, or an (x, y[, class_names]) tuple. "
                        f"Received: {type(source).__name__}")
    if class_names is not None and data.y is not None:
        data = _onto(data, list(class_names))
    if sample_shape is not None and data.sample_shape != tuple(sample_shape):
        raise DataError(f"{data.where[0]}: samples have shape {data.sample_shape}, the model takes "
                        f"{tuple(sample_shape)}")
    if require_labels:
        if data.y is None:
            raise DataError(f"{data.where[0]}: no labels (a .npz file needs an array 'y')")
        present = np.unique(data.y)
        if len(present) < 2 and class_names is None:
            raise DataError(f"the labels hold only one class ({data.class_names[int(present[0])]!r}); a classifier "
                            f"needs at least 2 (data: {_source_name(source)})")
    return data


def _source_name(source) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else "arrays"


def _load(path: str, what: str):
    """`np.load` without pickles (a data file is data, never code); an unreadable file is a DataError naming it."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: not a readable {what} ({error})") from error


def _from_npz(path: str, require_labels: bool) -> ArrayData:
    arrays = _load(path, ".npz file")
    if not hasattr(arrays, "files"):  # np.load read a single .npy array, not an archive of named arrays
        raise DataError(f"{path}: a .npy array, not a .npz archive of named arrays x / y (np.savez(path, x=x, y=y))")
    with arrays:
        keys = list(arrays)
        if "x" not in keys:
            raise DataError(f"{path!r} has no array 'x' (found keys {keys}); it needs x (the samples) and y (labels)")
        if "y" not in keys and require_labels:
            raise DataError(f"{path!r} has no array 'y' (found keys {keys}); y holds each sample's class id or name")
        x = arrays["x"]
        y = arrays["y"] if "y" in keys else None
        names = [str(n) for n in arrays["class_names"].tolist()] if "class_names" in keys else None
    return _from_arrays(x, y, names, f"{path}[x]", label_key=f"{path}[y]", names_key=f"{path}[class_names]")


def _from_arrays(x, y, names, where: str, label_key: str = "y", names_key: str = "class_names") -> ArrayData:
    x = np.asarray(x)
    if x.ndim == 2:  # (N, T) sequences of one channel
        x = x[..., None]
    if x.ndim not in (3, 5):
        hint = " (volumes (N, D, H, W) need a channel axis: (N, D, H, W, 1))" if x.ndim == 4 else ""
        raise DataError(f"{where}: expected samples stacked as (N, T), (N, T, C) or (N, D, H, W, C). "
                        f"Received: shape {x.shape}{hint}")
    if len(x) == 0:
        raise DataError(f"{where}: no samples (shape {x.shape})")
    per_sample = [f"{where}[{i}]" for i in range(len(x))]
    x = _finite(_float(x, where), per_sample)
    if y is None:
        return ArrayData(x, None, list(names or []), per_sample)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if len(y) != len(x):
        raise DataError(f"{label_key}: {len(y)} labels for {len(x)} samples in {where}")
    if y.dtype.kind in "US":  # class names as labels
        found = sorted({str(v) for v in y.tolist()})
        if names is not None:
            unknown = [v for v in found if v not in names]
            if unknown:
                raise DataError(f"{label_key}: label {unknown[0]!r} is not in {names_key} {names}")
        else:
            names = found
        lookup = {n: i for i, n in enumerate(names)}
        y = np.array([lookup[str(v)] for v in y.tolist()], "int64")
    else:
        if not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)) or not np.all(np.mod(y, 1) == 0):
            bad = next((v for v in y.tolist() if not (isinstance(v, (int, float)) and float(v).is_integer())), None)
            raise DataError(f"{label_key}: labels must be integer class ids or class names. Received: {bad!r} "
                            f"(dtype {y.dtype})")
        y = y.astype("int64")
        if y.min() < 0:
            raise DataError(f"{label_key}: labels must be >= 0. Received: {int(y.min())} "
                            f"(at index {int(np.argmin(y))})")
        names = list(names) if names is not None else [str(i) for i in range(int(y.max()) + 1)]
        if int(y.max()) >= len(names):
            raise DataError(f"{label_key}: label {int(y.max())} (at index {int(np.argmax(y))}) is outside "
                            f"{names_key} ({len(names)} names: {names[:5]})")
    return ArrayData(x, y, [str(n) for n in names], per_sample)


def _from_folder(root: str) -> ArrayData:
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    files = {c: sorted(os.path.join(root, c, f) for f in os.listdir(os.path.join(root, c))
                       if f.lower().endswith(".npy")) for c in classes}
    empty = [os.path.join(root, c) for c, fs in files.items() if not fs]
    if not classes or (len(classes) - len(empty)) == 0:
        raise DataError(f"data folder {root!r} has no class sub-folders of .npy files "
                        f"(expected {root}/<class name>/<sample>.npy)")
    if empty:
        raise DataError(f"class folder(s) {empty} have no .npy files; add samples or remove the folder(s)")
    xs, ys, where, shape, first = [], [], [], None, None
    for label, name in enumerate(classes):
        for path in files[name]:
            sample = as_sample(_load(path, ".npy array"), path)
            if shape is None:
                shape, first = sample.shape, path
            elif sample.shape != shape:
                raise DataError(f"{path}: shape {sample.shape} differs from {first}'s {shape}; every sample must "
                                "have the same shape (pad, crop or resample them)")
            xs.append(sample)
            ys.append(label)
            where.append(path)
    return ArrayData(np.stack(xs), np.array(ys, "int64"), classes, where)


def _onto(data: ArrayData, names: list) -> ArrayData:
    """Relabels `data` onto the class list `names`: by class name, or, for data without names (ids only), by id."""
    used = [data.class_names[i] for i in np.unique(data.y).tolist()]
    if all(n in names for n in used):
        mapping = np.array([names.index(n) if n in names else -1 for n in data.class_names], "int64")
        return ArrayData(data.x, mapping[data.y], list(names), data.where)
    if data.class_names == [str(i) for i in range(len(data.class_names))]:  # unnamed ids
        if int(data.y.max()) >= len(names):
            raise DataError(f"{data.where[int(np.argmax(data.y))]}: label {int(data.y.max())} is outside the model's "
                            f"{len(names)} classes {names}")
        return ArrayData(data.x, data.y, list(names), data.where)
    unknown = next(n for n in used if n not in names)
    raise DataError(f"class {unknown!r} of the data is not one of the model's classes {names}")


def split(data: ArrayData, validation_split: float, seed: int) -> tuple:
    """Seeded split (the image loaders' rule): `(train indices, validation indices)`, the first
    `round(N * validation_split)` of a permutation held out."""
    n_val = int(round(len(data.x) * validation_split))
    order = np.random.default_rng(seed).permutation(len(data.x))
    return order[n_val:], order[:n_val]


def read_input_arrays(item, index: int = 0) -> list:
    """One predict input -> `[(name, sample)]`: a `.npy` file (one sample), a `.npz` file (every sample of its
    `x`, named `file.npz[x][i]`) or an array (one sample; pass a list of arrays for several)."""
    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)
        if path.lower().endswith(".npz"):
            data = _from_npz(path, require_labels=False)
            return list(zip(data.where, data.x))
        if not path.lower().endswith(".npy"):
            raise DataError(f"{path}: predict takes .npy files (one sample each) or .npz files (array x)")
        return [(path, as_sample(_load(path, ".npy array"), path))]
    return [(f"input{index}", as_sample(item, f"input {index}"))]


def sine_waves(per_class: int = 20, frequencies=(2.0, 5.0), length: int = 64, channels: int = 2, noise: float = 0.3,
               seed: int = 0) -> tuple:
    """An easy synthetic sequence set: class k is a sine of `frequencies[k]` cycles over the window (random phase,
    amplitude 0.5-1.5, each channel its own phase) plus Gaussian noise. Returns `(x [N, T, C], y [N], names)`.

    >>> x, y, names = sine_waves(3, length=16)
    >>> x.shape, y.tolist(), names
    ((6, 16, 2), [0, 0, 0, 1, 1, 1], ['2hz', '5hz'])
    """
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, length, endpoint=False)[None, :, None]
    xs, ys = [], []
    for label, f in enumerate(frequencies):
        phase = rng.uniform(0, 2 * np.pi, (per_class, 1, channels))
        amplitude = rng.uniform(0.5, 1.5, (per_class, 1, 1))
        xs.append(amplitude * np.sin(2 * np.pi * f * t + phase) + noise * rng.normal(size=(per_class, length, channels)))
        ys.append(np.full(per_class, label))
    names = [f"{f:g}hz" for f in frequencies]
    return np.concatenate(xs).astype("float32"), np.concatenate(ys).astype("int64"), names


def bright_cubes(per_class: int = 10, side: int = 8, cube: int = 3, noise: float = 0.2, seed: int = 0) -> tuple:
    """An easy synthetic volume set: a bright cube (value 1) of side `cube` in noise, class 0 in the first half of
    the depth axis, class 1 in the second half (any height / width position). Returns `(x [N, side, side, side, 1],
    y [N], names)`.

    >>> x, y, names = bright_cubes(2, side=6)
    >>> x.shape, y.tolist(), names
    ((4, 6, 6, 6, 1), [0, 0, 1, 1], ['front', 'back'])
    """
    rng = np.random.default_rng(seed)
    x = noise * rng.normal(size=(2 * per_class, side, side, side, 1))
    half = side // 2
    for i in range(2 * per_class):
        label = i // per_class
        d = rng.integers(0, half - cube + 1) + (half if label else 0)
        h, w = rng.integers(0, side - cube + 1, size=2)
        x[i, d:d + cube, h:h + cube, w:w + cube, 0] += 1.0
    y = np.repeat(np.arange(2), per_class)
    return x.astype("float32"), y.astype("int64"), ["front", "back"]
