"""Labelled text -> (texts, labels, class names): CSV files, class-per-folder trees, TFDS, Python lists.

Every reader returns a `TextDataset` of plain numpy arrays (text corpora that fit a classifier here fit in
memory) with `.train` / `.validation` tf.data views; bad user data raises `DataError` naming the file,
row, column or value.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import os

import numpy as np
import tensorflow as tf

from toolkit.data.errors import DataError

TEXT_SUFFIXES = (".txt", ".text", ".md", "")


@dataclasses.dataclass
class TextDataset:
    """Texts with integer labels, split into train / validation (numpy object / int arrays)."""

    train_texts: np.ndarray
    train_labels: np.ndarray
    class_names: list
    validation_texts: np.ndarray | None = None
    validation_labels: np.ndarray | None = None
    batch_size: int = 32
    seed: int = 1337
    test: object = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_train(self) -> int:
        return len(self.train_texts)

    @property
    def train(self) -> tf.data.Dataset:
        """Shuffled `(text, label)` batches."""
        ds = tf.data.Dataset.from_tensor_slices((self.train_texts.astype(str), self.train_labels))
        return ds.shuffle(len(self.train_texts), seed=self.seed, reshuffle_each_iteration=True).batch(self.batch_size)

    @property
    def validation(self):
        if self.validation_texts is None or not len(self.validation_texts):
            return None
        return tf.data.Dataset.from_tensor_slices(
            (self.validation_texts.astype(str), self.validation_labels)).batch(self.batch_size)


def load_text_dataset(
    data,
    text_column: str = "text",
    label_column: str = "label",
    class_names=None,
    validation_split: float = 0.0,
    batch_size: int = 32,
    seed: int = 1337,
    encoding: str = "utf-8",
    tfds_split: str = "train",
    data_dir: str | None = None,
) -> TextDataset:
    """Reads labelled text from any supported source and splits off a stratified-random validation part.

    Args:
        data: a `.csv` / `.tsv` file (columns named by `text_column`, `label_column`); a folder with one
            sub-folder of `.txt` files per class; `"tfds:NAME"`; `(texts, labels)`; `{"text": [...],
            "label": [...]}`; or a `TextDataset`. Labels may be names or integer ids.
        text_column, label_column: CSV column / TFDS feature names.
        class_names: the allowed labels in id order (default: sorted distinct labels found).
        validation_split: fraction held out (shuffled with `seed` first: files are often label-sorted).
        encoding: text encoding of files (e.g. `cp1252`).
        tfds_split, data_dir: TFDS split and data folder.

    Raises:
        DataError: missing file or column, a byte that does not decode with `encoding` (naming the file,
            line and byte), empty text, a label outside `class_names`, a single class.

    Examples:
    >>> ds = load_text_dataset((["good film", "bad film"], ["pos", "neg"]))
    >>> ds.class_names, ds.train_labels.tolist()
    (['neg', 'pos'], [1, 0])
    """
    if isinstance(data, TextDataset):
        return data
    if isinstance(data, (str, os.PathLike)) and str(data).startswith("tfds:"):
        texts, labels, found_names = _read_tfds(str(data)[5:], text_column, label_column, tfds_split, data_dir)
        class_names = class_names or found_names
        source = str(data)
    elif isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if os.path.isdir(path):
            texts, labels, sources = _read_folder(path, encoding)
            class_names = class_names or sorted(set(labels))
        elif os.path.isfile(path):
            texts, labels, sources = _read_csv(path, text_column, label_column, encoding)
        else:
            raise DataError(f"text data {path!r} does not exist (expected a CSV file or a folder of class folders)")
        source = path
    elif isinstance(data, dict):
        missing = [c for c in (text_column, label_column) if c not in data]
        if missing:
            raise DataError(f"data dict has no {missing} key(s); keys: {sorted(data)}")
        texts, labels, source = list(data[text_column]), list(data[label_column]), "dict"
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        texts, labels, source = list(data[0]), list(data[1]), "lists"
    else:
        raise DataError(f"unsupported text data {type(data).__name__}: use a CSV path, a folder, 'tfds:NAME', "
                        "(texts, labels) or a dict")
    if len(texts) != len(labels):
        raise DataError(f"{source}: {len(texts)} texts but {len(labels)} labels")
    if not texts:
        raise DataError(f"{source}: no examples")
    texts = [_as_text(t) for t in texts]
    if not isinstance(data, (str, os.PathLike)) or str(data).startswith("tfds:"):
        sources = [f"{source} item {i}" for i in range(len(texts))]
    for text, where in zip(texts, sources):
        if not text.strip():
            raise DataError(f"{where}: empty text")
    ids, class_names = encode_labels(labels, class_names, sources)
    if len(class_names) < 2:
        raise DataError(f"{source}: need at least 2 classes. Found: {class_names}")
    texts = np.array(texts, dtype=object)
    order = np.random.default_rng(seed).permutation(len(texts))
    n_val = int(round(len(texts) * validation_split)) if validation_split else 0
    val, train = order[:n_val], order[n_val:]
    return TextDataset(texts[train], ids[train], list(class_names), texts[val] if n_val else None,
                       ids[val] if n_val else None, batch_size=batch_size, seed=seed)


def read_text_file(path, encoding: str = "utf-8", newline: str | None = None) -> str:
    """The text of the file `path` decoded with `encoding` (a leading UTF-8 byte-order mark is dropped).

    A byte that does not decode is a `DataError` naming the file, the byte, its line and the fix; an
    unknown encoding name is one too.

    Args:
        path: the file.
        encoding: its text encoding (`utf-8`, `cp1252`, `latin-1`, ...).
        newline: None translates `\\r\\n` and `\\r` to `\\n` (as `open()` does); `""` keeps the line
            endings (what the `csv` module needs for quoted fields holding newlines).

    Examples:
    >>> with open("notes.txt", "wb") as f:
    ...     _ = f.write(b"first line\\ncaf\\xe9\\n")
    >>> read_text_file("notes.txt")
    Traceback (most recent call last):
    ...
    toolkit.data.errors.DataError: notes.txt is not valid utf-8 (byte 0xe9 at line 2); pass the file's encoding
    (--encoding cp1252 on the command line, encoding="cp1252" in Python)
    >>> read_text_file("notes.txt", encoding="cp1252")
    'first line\\ncafé\\n'
    """
    path = os.fspath(path)
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise DataError(f"unknown text encoding {encoding!r} for {path} (examples: utf-8, cp1252, latin-1)") from None
    with open(path, "rb") as f:
        content = f.read()
    try:
        text = content.decode("utf-8-sig" if name == "utf-8" else encoding)
    except UnicodeDecodeError as error:
        raise DataError(decode_error_message(path, content, error, encoding)) from None
    if newline is None:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def decode_error_message(path, content: bytes, error: UnicodeDecodeError, encoding: str, fix: str | None = None) -> str:
    """`PATH is not valid ENCODING (byte 0xNN at line L); FIX` for a `UnicodeDecodeError` of `content`.

    `fix` defaults to the hint for the loaders that take an encoding (`--encoding` / `encoding=`).
    """
    line = content.count(b"\n", 0, error.start) + 1
    byte = content[error.start:error.start + 1].hex() or "??"
    if fix is None:
        example = "latin-1" if codecs.lookup(encoding).name == "cp1252" else "cp1252"
        fix = (f"pass the file's encoding (--encoding {example} on the command line, "
               f"encoding=\"{example}\" in Python)")
    return f"{os.fspath(path)} is not valid {encoding} (byte 0x{byte} at line {line}); {fix}"


def encode_labels(labels, class_names=None, sources=None):
    """Label names or ids -> `(int32 ids, class_names)`; a label outside `class_names` is a DataError."""
    labels = [_as_text(v) if isinstance(v, (bytes, np.bytes_)) else v for v in labels]
    numeric = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels)
    if class_names is None:
        if numeric:
            class_names = [str(i) for i in range(int(max(labels)) + 1)]
        else:
            class_names = sorted({str(v) for v in labels})
    class_names = [str(c) for c in class_names]
    index = {name: i for i, name in enumerate(class_names)}
    ids = np.empty(len(labels), dtype="int32")
    for i, value in enumerate(labels):
        if numeric and 0 <= int(value) < len(class_names):
            ids[i] = int(value)
        elif not numeric and str(value) in index:
            ids[i] = index[str(value)]
        else:
            where = sources[i] if sources else f"item {i}"
            raise DataError(f"{where}: label {value!r} is not in the class list {class_names}")
    return ids, class_names


def _as_text(value) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _read_csv(path, text_column, label_column, encoding):
    delimiter = "\t" if path.lower().endswith((".tsv", ".tab")) else ","
    # Decoded whole first, so a bad byte is reported with its line; newline="" keeps quoted multi-line fields.
    with io.StringIO(read_text_file(path, encoding, newline=""), newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        columns = reader.fieldnames or []
        missing = [c for c in (text_column, label_column) if c not in columns]
        if missing:
            raise DataError(f"{path}: no column {missing[0]!r} (columns: {columns}); "
                            "name the columns with text_column= / label_column=")
        texts, labels, sources = [], [], []
        for row_number, row in enumerate(reader, start=2):
            texts.append(row[text_column] or "")
            labels.append((row[label_column] or "").strip())
            sources.append(f"{path} row {row_number} column {text_column!r}")
    return texts, labels, sources


def _read_folder(path, encoding):
    classes = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)) and not d.startswith("."))
    if not classes:
        raise DataError(f"{path}: no class sub-folders (expected {path}/<class>/<file>.txt)")
    texts, labels, sources = [], [], []
    for name in classes:
        folder = os.path.join(path, name)
        files = sorted(f for f in os.listdir(folder)
                       if not f.startswith(".") and os.path.splitext(f)[1].lower() in TEXT_SUFFIXES)
        if not files:
            raise DataError(f"{folder}: class folder {name!r} holds no .txt files")
        for file in files:
            full = os.path.join(folder, file)
            texts.append(read_text_file(full, encoding))
            labels.append(name)
            sources.append(full)
    return texts, labels, sources


def _read_tfds(name, text_column, label_column, split, data_dir):
    import tensorflow_datasets as tfds

    dataset, info = tfds.load(name, split=split, data_dir=data_dir, with_info=True)
    features = info.features
    if text_column not in features:
        strings = [k for k, v in features.items() if getattr(v, "dtype", None) == tf.string]
        if not strings:
            raise DataError(f"tfds:{name} has no text feature {text_column!r} (features: {list(features)})")
        text_column = strings[0]
    if label_column not in features:
        raise DataError(f"tfds:{name} has no label feature {label_column!r} (features: {list(features)})")
    names = list(getattr(features[label_column], "names", []) or []) or None
    texts, labels = [], []
    for example in tfds.as_numpy(dataset):
        texts.append(_as_text(example[text_column]))
        labels.append(int(example[label_column]))
    return texts, labels, names
