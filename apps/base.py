"""What every app shares: config dataclasses, the Run result, train -> evaluate -> export -> predict.

An app subclasses `App` and fills in a handful of task hooks (load data, build the model, fit, score,
serving adapter, raw-input conversion); everything else, including the CLI, comes from here.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import typing

import keras
import numpy as np
import tensorflow as tf

from apps import run_dirs
from apps.config import BaseConfig, TaskSpec, explicit_options, make_config, option  # noqa: F401  (apps import them here)
from apps.results import (  # noqa: F401
    FEW_EXAMPLES, _at, _jsonable, held_out_size, input_name, merge_histories, output_stem, text_of,
)
from toolkit.export import Predictor, ServingAdapter, export, load
from toolkit.export.adapter import to_numpy_dict
from toolkit.export.edge import EdgePredictor, is_edge_file
from toolkit.export.formats import QUANTIZED_FORMATS, check_export_options
from toolkit.saving import load_model
from toolkit.training.distribution import get_strategy, needs_static_batches, static_batches
from toolkit.training.fault_tolerance import PhaseCheckpoint, TrainingDivergedError, read_json, write_status

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class RunContext:
    """One training run as the App hooks see it. Hooks keep per-run values here (`data`, `state`), never
    on the App (a module-level singleton shared by every run in the process).

    Attributes:
        config: the run's Config.
        explicit: names of the options the caller set (the rest are defaults; see `explicit_options`).
        run_dir: the run directory.
        strategy: the `tf.distribute` strategy the model is built under.
        data: what `App.load_data` returned.
        state: values one hook hands to a later one (a detector's loss, a VAE's held-out images, ...).
    """

    config: typing.Any
    explicit: frozenset = frozenset()
    run_dir: str | None = None
    strategy: typing.Any = None
    data: typing.Any = None
    state: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Run:
    """The result of `train`: the model, its held-out metrics, history, plots and run directory."""

    app: "App"
    model: keras.Model
    config: typing.Any
    info: dict
    history: dict = dataclasses.field(default_factory=dict)
    metrics: dict = dataclasses.field(default_factory=dict)
    plots: dict = dataclasses.field(default_factory=dict)
    run_dir: str | None = None
    data: typing.Any = dataclasses.field(default=None, repr=False)  # the task data, in the training process

    @property
    def adapter(self) -> ServingAdapter:
        if not hasattr(self, "_adapter"):
            self._adapter = self.app.serving_adapter(self)
        return self._adapter

    def export(self, directory: str, target: str = "cpu", formats=("saved_model",), batch_size: int = 8,
               adapter: ServingAdapter | None = None, max_quantization_drop: float | None = None,
               calibration_size: int = 200, int8_io: bool = False, data=None, test_data=None, **options) -> str:
        """Exports to `directory/<next version>/` (see `toolkit.export.export`) with metrics in the metadata.

        The target and formats are checked first (`toolkit.export.formats`): an unknown or unsupported pair
        fails before any work. `adapter` replaces the app's default serving adapter for this export;
        `options` go to `App.export_adapter` (the detector's `score_threshold`: its serving NMS threshold).

        Quantized formats (`tflite-dynamic`, `tflite-fp16`, `tflite-int8`, `onnx-int8`) calibrate on
        `calibration_size` training examples and are scored on the held-out data through their own runtime; one
        that lost more than `max_quantization_drop` points (default: 1 of accuracy, 2 of mAP@.5 / mIoU) is not
        published (`metadata["quantization"]` names the drop). `data` / `test_data` replace the run's recorded
        data sources; `int8_io`: tflite-int8 with int8 input / output tensors.
        """
        formats = check_export_options(self.app.kind(self.config), target, formats)
        quantization = None
        if any(f in QUANTIZED_FORMATS for f in formats):
            from apps.quantization import quantization_options

            quantization = quantization_options(self, formats, data=data, test_data=test_data,
                                                max_drop=max_quantization_drop, calibration_size=calibration_size,
                                                int8_io=int8_io)
        return export(
            self.model,
            directory,
            target=target,
            formats=formats,
            adapter=adapter or self.app.export_adapter(self, target, formats, **options),
            batch_size=batch_size,
            metadata={"metrics": _summary(self.metrics), "app": self.app.name, "info": self.info,
                      "config": dataclasses.asdict(self.config)},
            quantization=quantization,
        )

    def evaluate(self, data) -> dict:
        return self.app.evaluate(self, data)

    def predict(self, inputs) -> list:
        return self.app.predict(self, inputs)

    def save(self, path: str) -> str:
        """Saves the Keras model (`.keras`)."""
        self.model.save(path)
        return path


class _LivePredictor:
    """A Run seen through the same interface as an exported `Predictor`."""

    def __init__(self, run: Run):
        self.run, self.adapter = run, run.adapter
        self.labels = self.adapter.labels
        self.metadata = {"info": run.info}
        def compute(dense):
            return self.adapter.compute(run.model, dense)

        self._compute = tf.function(compute, reduce_retracing=True)

    def __call__(self, inputs, signature="serving_default"):
        if signature == "serving_default":
            out = self.adapter.run_raw(self.run.model, _tensors(inputs), compute_fn=self._compute)
        elif signature in self.adapter.extra_signatures:
            out = self.adapter.run_extra(self.run.model, signature, _tensors(inputs))
        else:
            out = self.adapter.run_dense(self.run.model, _tensors(inputs), compute_fn=self._compute)
        return to_numpy_dict(out)


def _tensors(inputs: dict) -> dict:
    return {k: tf.constant(np.array(list(v), dtype=object)) if _is_bytes_like(v) else tf.convert_to_tensor(v)
            for k, v in inputs.items()}


def _is_bytes_like(value) -> bool:
    return isinstance(value, (list, tuple)) and value and isinstance(value[0], (bytes, str))


def _summary(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}


class App(TaskSpec):
    """Base of every task app: a task's spec (`apps/specs/<task>.py`: name, Config, description) plus the
    hooks that do the work."""

    phase_names: tuple = ()  # labels of training phases 2, 3, ... on the history plot (default "phase N")

    # ---- hooks every app implements -------------------------------------------------------------
    def load_data(self, data, config, test_data=None):
        """Returns a task data object with `.train`, `.validation`, `.test` (tf.data or None) and info."""
        raise NotImplementedError

    def build_model(self, ctx: RunContext) -> keras.Model:
        """The model for `ctx.data` and `ctx.config` (built under the run's strategy scope)."""
        raise NotImplementedError

    def fit(self, model, ctx: RunContext, callbacks) -> dict:
        """Compiles and fits; returns the merged Keras history dict."""
        raise NotImplementedError

    def info(self, ctx: RunContext) -> dict:
        """JSON-able facts a Run needs later (class names, input shape, ...)."""
        raise NotImplementedError

    def serving_adapter(self, run: Run) -> ServingAdapter:
        raise NotImplementedError

    # ---- optional hooks -------------------------------------------------------------------------
    def validate(self, config) -> None:
        """Checks option values (model names, backbones, ...) before any work; raises ValueError."""

    def prepare(self, model, ctx: RunContext) -> None:
        """After `build_model`: build what depends on the built model (e.g. target encoders), into `ctx`."""

    def finish(self, run: Run, ctx: RunContext) -> None:
        """After held-out scoring, before the run directory is written: extra metrics into `run.metrics`."""

    def export_adapter(self, run: Run, target: str, formats: tuple, **options) -> ServingAdapter:
        """The serving adapter for one export (default: `run.adapter`); apps whose graph depends on the
        target, formats or export options (a detector's NMS op and threshold) override it."""
        given = {k: v for k, v in options.items() if v is not None}
        if given:
            raise ValueError(f"{self.name} export takes no option(s) {sorted(given)}")
        return run.adapter

    def score(self, predictor, dataset, info) -> dict:
        """Held-out metrics from `predictor(dense inputs, signature="serving_dense")` over `dataset`."""
        raise NotImplementedError

    def eval_dataset(self, data, info, config=None):
        """User data -> a dataset of `(dense inputs, targets)` batches for `score`."""
        raise NotImplementedError

    def raw_inputs(self, inputs, info) -> dict:
        """User inputs (paths, bytes, arrays, strings) -> the raw signature's inputs."""
        raise NotImplementedError

    def format_predictions(self, outputs: dict, inputs, top_k: int | None = None,
                           score_threshold: float | None = None, labels=None) -> list:
        """Signature outputs -> one readable dict per input (`top_k` / `score_threshold` where they apply;
        `labels`: the model's class names in id order, when it has them)."""
        n = len(next(iter(outputs.values())))
        return [{k: _jsonable(v[i]) for k, v in outputs.items()} for i in range(n)]

    def write_outputs(self, results: list, inputs: list, outputs: dict, output_dir: str) -> None:
        """Writes per-input pictures (drawn boxes, overlays, reconstructions) to `output_dir`; adds their paths."""

    def input_items(self, inputs) -> list:
        """One input or many -> a list of single inputs."""
        return [inputs] if isinstance(inputs, (str, bytes, os.PathLike)) else list(inputs)

    def readable_inputs(self, inputs) -> tuple:
        """`(readable items, [(item, reason), ...])`: each item converted on its own, so one unreadable file
        is reported and skipped instead of failing the batch."""
        good, skipped = [], []
        for item in self.input_items(inputs):
            try:
                self.raw_inputs([item], {})
                good.append(item)
            except (ValueError, OSError) as error:  # DataError is a ValueError
                skipped.append((item, str(error)))
        return good, skipped

    def summary(self, metrics: dict) -> str:
        """One screen of held-out metrics for the terminal."""
        return "\n".join(f"{k:>24}: {v:.4f}" if isinstance(v, float) else f"{k:>24}: {v}"
                         for k, v in _summary(metrics).items())

    def plot(self, run: Run, ctx: RunContext | None = None) -> dict:
        """Task plots as `{name: png path}` (training curves by default)."""
        from toolkit.metrics import plot_history

        if not run.run_dir:
            return {}
        plots = {}
        if run.history:
            from toolkit.metrics.plots import phase_boundaries_of

            starts = phase_boundaries_of(run.history.get("phase") or [])
            labels = {epoch: (self.phase_names[i] if i < len(self.phase_names) else f"phase {i + 2}")
                      for i, epoch in enumerate(starts)}
            plots["history"] = plot_history(run.history, os.path.join(run.run_dir, "history.png"), title=self.name,
                                            phase_boundaries=labels)
        held_out = self.held_out(getattr(ctx, "data", None))
        if isinstance(held_out, tf.data.Dataset):
            try:  # pictures only: a drawing problem never fails a trained, scored run
                self.draw_samples(run, held_out, plots)
            except Exception as error:  # noqa: BLE001
                logger.warning("%s: could not draw sample predictions: %s", self.name, error)
        return plots

    def draw_samples(self, run: Run, held_out, plots: dict) -> None:
        """Optional: pictures of a few held-out predictions into the run directory, their paths into `plots`."""

    def held_out(self, data):
        """The task data's test set, else its validation split (None when it has neither)."""
        test = getattr(data, "test", None)
        return test if test is not None else getattr(data, "validation", None)

    # ---- shared plumbing ------------------------------------------------------------------------
    def make_config(self, config=None, **overrides):
        config = make_config(self.config_cls, config, **overrides)
        self.validate(config)
        return config

    def train(self, data, config=None, test_data=None, **overrides) -> Run:
        """Trains on `data`, evaluates on `test_data` (else the validation split), writes a run directory.

        Every epoch is checkpointed (model + optimizer) in the run directory; re-running the same call after
        a crash resumes from the last completed epoch. A NaN loss stops training with
        `TrainingDivergedError`, keeping the last good checkpoint.
        """
        explicit = explicit_options(self.config_cls, config, **overrides)
        config = self.make_config(config, **overrides)
        strategy = get_strategy(config.strategy)  # first: multi-worker needs an untouched TF runtime
        keras.utils.set_random_seed(config.seed)
        parts = run_dirs.fingerprint_parts(self.name, config, data, test_data)
        key = run_dirs.fingerprint(self.name, config, data, test_data)
        run_dir, resumed = run_dirs.resolve_run_dir(self.name, config, key=key, parts=parts)
        ctx = RunContext(config=config, explicit=explicit, run_dir=run_dir, strategy=strategy)
        status = {"fingerprint": key, "parts": parts, "app": self.name}
        write_status(run_dir, "running", stage="data", **status)
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump({"app": self.name, **dataclasses.asdict(config)}, f, indent=2)
        from apps.quantization import record_sources

        record_sources(run_dir, data, test_data)  # a later `export` calibrates and guards quantized files on them
        try:
            run = self._train_in(ctx, data, test_data, status)
        except BaseException as error:
            stage = (read_json(os.path.join(run_dir, "status.json")) or {}).get("stage", "data")
            write_status(run_dir, "failed", stage=stage, reason=f"{type(error).__name__}: {error}", **status)
            raise
        note = run.metrics.get("stopped_early")  # e.g. the detector's --max-minutes cut the run short
        write_status(run_dir, "finished", resumed=resumed, **status, **({"note": note} if note else {}))
        return run

    def _train_in(self, ctx: RunContext, data, test_data, status: dict) -> Run:
        config, strategy, run_dir = ctx.config, ctx.strategy, ctx.run_dir
        task_data = ctx.data = self.load_data(data, config, test_data=test_data)
        write_status(run_dir, "running", stage="training", **status)  # from here on a re-run resumes
        if needs_static_batches(strategy):  # tpu: one compiled program, so every step gets the same batch
            for name in ("train", "validation"):
                dataset = getattr(task_data, name, None)
                if isinstance(dataset, tf.data.Dataset):
                    setattr(task_data, name, static_batches(dataset, config.batch_size))
        if getattr(config, "lr_range", "") == "auto":  # the LR range test first (or its saved result, on resume)
            from apps.lr_find import auto_lr_range

            ctx.config = config = auto_lr_range(self, ctx)
        with strategy.scope():
            model = self.build_model(ctx)
            self.prepare(model, ctx)
            if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
                # Keras 3.15 bug: fit's eager "symbolic build" all-reduces a data batch across workers and
                # fails on PerReplica values. With no model-level strategy Keras defers building to tracing
                # and takes the strategy from this scope, which distributes the same way.
                model._distribute_strategy = None
            run = Run(app=self, model=model, config=config, info=self.info(ctx), run_dir=run_dir, data=task_data)
            checkpoint = PhaseCheckpoint(os.path.join(run_dir, "checkpoints"))
            callbacks = [checkpoint, *self.callbacks(ctx)]
            if config.tensorboard:
                callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), profile_batch=0))
            history = self.fit(model, ctx, callbacks)
        if checkpoint.diverged:
            if checkpoint.restore_last_good():  # the last good weights, for `export --allow-unfinished`
                self._save_model(run)
            raise TrainingDivergedError(
                f"training stopped: {checkpoint.diverged}. The last good checkpoint is kept in "
                f"{checkpoint.directory}; lower the learning rate or check the data, then re-run to resume")
        run.history = checkpoint.history() or history
        # saved before evaluation: a failing metric never loses the trained model (`export --allow-unfinished`)
        self._save_model(run)
        write_status(run_dir, "running", stage="evaluation", **status)
        held_out = self.held_out(task_data)
        if held_out is not None:
            run.metrics = self.score(_LivePredictor(run), held_out, run.info)
            run.metrics["evaluated_on"] = "test" if getattr(task_data, "test", None) is not None else "validation"
            count = held_out_size(held_out, FEW_EXAMPLES)
            if count is not None and count < FEW_EXAMPLES:
                run.metrics["warning"] = (f"only {count} held-out example(s): these metrics are rough (one example "
                                          f"moves accuracy by {100 / max(count, 1):.0f} points); hold out more data")
                logger.warning("%s: %s", self.name, run.metrics["warning"])
        self.finish(run, ctx)
        run.plots = self.plot(run, ctx)
        self._write_run_dir(run)
        return run

    def callbacks(self, ctx: RunContext) -> list:
        from toolkit.training import default_callbacks

        config, data = ctx.config, ctx.data
        patience = None if config.patience is None or config.patience < 0 else config.patience
        callbacks = default_callbacks(patience=patience, has_validation=data.validation is not None)
        if getattr(config, "lr_schedule", "") == "plateau":
            from toolkit.training.lr_schedules import plateau_callback

            callbacks.append(plateau_callback("val_loss" if data.validation is not None else "loss"))
        if getattr(config, "monitor_layers", ""):
            from toolkit.inspect.statistics import LayerStatisticsMonitor

            layers = None if config.monitor_layers == "all" else config.monitor_layers
            sample = data.validation if data.validation is not None else data.train
            log_dir = os.path.join(ctx.run_dir, "layer_statistics") if ctx.run_dir else None
            callbacks.append(LayerStatisticsMonitor(sample, layers=layers, every=config.monitor_every,
                                                    log_dir=log_dir))
        return callbacks

    def predictor(self, path_or_run):
        if isinstance(path_or_run, Run):
            return _LivePredictor(path_or_run)
        if isinstance(path_or_run, (Predictor, EdgePredictor)):
            return path_or_run
        if is_edge_file(path_or_run):  # a .tflite / .onnx file, run through its own runtime
            return EdgePredictor(path_or_run)
        return load(path_or_run)

    def _info_of(self, predictor) -> dict:
        return predictor.metadata.get("info") or {}

    def evaluate(self, path_or_run, data, score_threshold: float | None = None, encoding: str | None = None) -> dict:
        """The held-out metrics of a Run or an exported model (folder) on `data`.

        `score_threshold` (the detector): the NMS score threshold mAP is computed at (default: the run's
        `eval_score_threshold`). `encoding` (text apps): of the evaluation files (default: the training data's).
        """
        predictor = self.predictor(path_or_run)
        info = self._info_of(predictor)
        if score_threshold is not None:
            info = {**info, "eval_score_threshold": float(score_threshold)}
        if encoding is not None:
            info = {**info, "encoding": encoding}
        dataset = self.eval_dataset(data, info)
        return self.score(predictor, dataset, info)

    def predict(self, path_or_run, inputs, output_dir: str | None = None, top_k: int | None = None,
                score_threshold: float | None = None) -> list:
        """Predictions for raw inputs (file paths, bytes, arrays, strings) from a Run or an export.

        Args:
            path_or_run: a Run, an export folder or a run directory's Run.
            inputs: one input or a list (file paths, encoded bytes, arrays, strings).
            output_dir: where apps that draw (detector boxes, segmenter overlays, VAE reconstructions) write
                their PNGs; None writes none.
            top_k: classifiers: also return the k best labels; the embedder: neighbours returned.
            score_threshold: the detector: keep detections scoring at least this.

        Every result names its `input` (the file name, the text, or the input's index).
        """
        predictor = self.predictor(path_or_run)
        items = self.input_items(inputs)
        raw = self.raw_inputs(items, self._info_of(predictor))
        outputs = predictor(raw, signature="serving_default")
        results = self.format_predictions(outputs, items, top_k=top_k, score_threshold=score_threshold,
                                          labels=getattr(predictor, "labels", None))
        for index, (item, result) in enumerate(zip(items, results)):
            result["input"] = input_name(item, index)
        if output_dir:
            os.makedirs(output_dir, exist_ok=True)
            self.write_outputs(results, items, outputs, output_dir)
        return results

    def load_run(self, run_dir: str, allow_unfinished: bool = False) -> Run:
        """Re-opens a finished run directory (model.keras, config, info, metrics) as a Run."""
        files = {name: os.path.join(run_dir, name) for name in ("model.keras", "config.json", "info.json")}
        missing = [name for name, path in files.items() if not os.path.isfile(path)]
        if missing:
            raise FileNotFoundError(f"{run_dir!r} is not a run directory of this app (missing {missing})")
        status = read_json(os.path.join(run_dir, "status.json")) or {"status": "finished"}
        if status["status"] != "finished" and not allow_unfinished:
            raise ValueError(f"run {run_dir!r} did not finish (status: {status['status']}); resume it first, or pass "
                             "allow_unfinished=True (--allow-unfinished) to use its last saved model")
        with open(files["config.json"]) as f:
            config = json.load(f)
        config.pop("app", None)
        with open(files["info.json"]) as f:
            info = json.load(f)
        metrics = {}
        if os.path.isfile(os.path.join(run_dir, "metrics.json")):
            with open(os.path.join(run_dir, "metrics.json")) as f:
                metrics = json.load(f)
        model = load_model(files["model.keras"])
        known = {f.name for f in dataclasses.fields(self.config_cls)}
        config = self.make_config(**{k: v for k, v in config.items() if k in known})
        return Run(app=self, model=model, config=config, info=info, metrics=metrics, run_dir=run_dir)

    def _save_model(self, run: Run) -> None:
        with open(os.path.join(run.run_dir, "info.json"), "w") as f:
            json.dump(run.info, f, indent=2, default=_jsonable)
        run.model.save(os.path.join(run.run_dir, "model.keras"))

    def _write_run_dir(self, run: Run) -> None:
        with open(os.path.join(run.run_dir, "metrics.json"), "w") as f:
            json.dump(run.metrics, f, indent=2, default=_jsonable)
        if run.history:
            keys = list(run.history)
            with open(os.path.join(run.run_dir, "history.csv"), "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["epoch", *keys])
                for epoch in range(max(len(v) for v in run.history.values())):
                    writer.writerow([epoch + 1, *[_at(run.history[k], epoch) for k in keys]])
