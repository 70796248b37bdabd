"""The apps' side of quantized exports: each app's guard metric, calibration rows from the run's training data,
and the held-out scorer (`App.score` through the file's own runtime).

A run records where its data came from (`sources.json` in the run directory, for data given as a path), so
`toolkit <task> export RUN_DIR --formats tflite-int8` in a new process re-reads the same training data
(calibration) and the same held-out split (the guard) as the training process saw.
"""

from __future__ import annotations

import json
import os

import numpy as np

SOURCES_FILE = "sources.json"
# app name -> (metric, higher is better, default max drop in points, points per metric unit)
GUARDS = {
    "image-classifier": ("accuracy", True, 1.0, 100.0),
    "object-detector": ("map_50", True, 2.0, 100.0),
    "image-segmenter": ("mean_iou", True, 2.0, 100.0),
    "array-classifier": ("accuracy", True, 1.0, 100.0),
}
CALIBRATION_SIZE = 200


def record_sources(run_dir: str, data, test_data) -> None:
    """Writes `sources.json` (data given as paths / names only: in-memory data cannot be re-read)."""
    def source(value):
        return os.fspath(value) if isinstance(value, (str, os.PathLike)) else None

    with open(os.path.join(run_dir, SOURCES_FILE), "w") as f:
        json.dump({"data": source(data), "test_data": source(test_data)}, f, indent=2)


def read_sources(run_dir: str | None) -> dict:
    path = os.path.join(run_dir or "", SOURCES_FILE)
    if not run_dir or not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def quantization_options(run, formats, data=None, test_data=None, max_drop: float | None = None,
                         calibration_size: int = CALIBRATION_SIZE, int8_io: bool = False):
    """The `QuantizationOptions` of one export of `run`: calibration rows and the held-out guard.

    Args:
        run: the `Run` (in the training process its data is in memory; else the recorded sources are re-read).
        data, test_data: override the training / held-out data (paths, as `train` takes them).
        max_drop: the guard, in points (default: 1 point of accuracy, 2 of mAP@.5, 2 of mIoU).
        calibration_size: training examples the int8 formats calibrate on.
        int8_io: tflite-int8 with int8 input / output tensors.
    """
    from apps.base import RunContext
    from toolkit.export.quantize import QuantizationOptions

    app = run.app
    if app.name not in GUARDS:
        raise ValueError(f"{app.name} has no quantized formats (see the export table in --help)")
    if calibration_size < 1:
        raise ValueError(f"calibration_size must be >= 1. Received: calibration_size={calibration_size}")
    metric, higher, default_drop, points = GUARDS[app.name]
    task_data = run.data if data is None and test_data is None else None
    if task_data is None:
        sources = read_sources(run.run_dir)
        data = data if data is not None else sources.get("data")
        test_data = test_data if test_data is not None else sources.get("test_data")
        if data is None:
            raise ValueError("quantized formats calibrate on the run's training data and are scored on its held-out "
                             "data, and this run recorded no data path (it was trained from in-memory data): pass "
                             "data= and test_data= (--data, --test-data)")
        task_data = app.load_data(data, run.config, test_data=test_data)
        app.prepare(run.model, RunContext(config=run.config, run_dir=None, data=task_data))
    held_out = app.held_out(task_data)
    if held_out is None:
        raise ValueError("the accuracy guard needs held-out data: train with a validation split or pass test_data= "
                         "(--test-data)")
    names = list(run.adapter.dense_inputs)
    return QuantizationOptions(
        evaluate=lambda predictor: app.score(predictor, held_out, run.info),
        representative=calibration_rows(task_data.train, names, calibration_size),
        metric=metric, higher_is_better=higher, max_drop=default_drop if max_drop is None else float(max_drop),
        points_per_unit=points, int8_io=int8_io,
    )


def calibration_rows(dataset, names: list, count: int) -> list:
    """Up to `count` rows of a batched training dataset's inputs as `[{name: array [n, ...]}]` (its first
    element, or its `images` / `pixels` entry, is the dense input)."""
    rows, taken = [], 0
    for batch in dataset:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if isinstance(x, dict):
            x = {n: x[n] for n in names} if all(n in x for n in names) else {names[0]: x.get("images", x.get("pixels"))}
        else:
            x = {names[0]: x}
        x = {k: np.asarray(v)[: count - taken].astype("float32") for k, v in x.items()}
        rows.append(x)
        taken += len(next(iter(x.values())))
        if taken >= count:
            break
    return rows


def summary_lines(metadata: dict) -> list:
    """The CLI's lines for an export's quantized files: metric next to the float model, size, published or not."""
    report = metadata.get("quantization") or {}
    if not report:
        return []
    metric, reference = report["metric"], report["float"]
    lines = [f"quantization guard: {metric} (float {reference:.4f}), max drop {report['max_drop']:g} points, "
             f"{report['calibration_examples']} calibration examples"]
    for fmt, entry in report["formats"].items():
        state = "published" if entry["published"] else f"NOT published: {entry['reason']}"
        lines.append(f"  {fmt:<15} {entry['file']:<22} {metric} {entry['metric']:.4f}  drop {entry['drop']:+.2f}  "
                     f"{entry['size_bytes'] / 1024:.1f} KiB ({entry['size_ratio']:.2f}x smaller)  {state}")
    return lines
