"""Resume after a crash: per-phase checkpoints of model + optimizer, NaN detection, run-dir status.

Keras' `BackupAndRestore` saves model weights only (no optimizer state, so Adam moments and the
learning-rate schedule's step restart) and treats every `fit` call alike. Apps train in phases (head,
then fine-tune), so this callback checkpoints each `fit` call ("phase") separately with
`tf.train.Checkpoint(model, optimizer)`, and on resume restores the last completed epoch of the
running phase and skips phases that already finished.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket

import keras
import tensorflow as tf

logger = logging.getLogger(__name__)
STATE_FILE = "state.json"


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def _write_json(path: str, document: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(document, f, indent=2)
    os.replace(tmp, path)  # atomic: a kill never leaves a half-written state file


def read_json(path: str) -> dict | None:
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


class PhaseCheckpoint(keras.callbacks.Callback):
    """Checkpoints every epoch of every `fit` call; resumes the interrupted one; stops on NaN loss.

    Args:
        directory: where `phase<N>/` checkpoint folders go (inside the run directory).
        keep: checkpoints kept per phase (older ones are deleted).
    """

    def __init__(self, directory: str, keep: int = 1):
        super().__init__()
        self.directory, self.keep = directory, keep
        self.phase = 0
        self.diverged: str | None = None
        self.resumed: list = []  # (phase, epoch) pairs restored from disk
        self._checkpoint = None

    # -- state -------------------------------------------------------------------------------------
    def _phase_dir(self, phase=None) -> str:
        return os.path.join(self.directory, f"phase{phase or self.phase}")

    def _state(self, phase=None) -> dict | None:
        return read_json(os.path.join(self._phase_dir(phase), STATE_FILE))

    def history(self) -> dict:
        """The per-epoch logs of every phase, concatenated (survives restarts)."""
        merged: dict = {}
        phase = 1
        while (state := self._state(phase)) is not None:
            for logs in state["history"]:
                for key, value in logs.items():
                    merged.setdefault(key, []).append(value)
            phase += 1
        return merged

    # -- callback hooks ------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self.phase += 1
        os.makedirs(self._phase_dir(), exist_ok=True)
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self._checkpoint = tf.train.Checkpoint(model=self.model, optimizer=optimizer)
        state = self._state()
        if state is None:
            _write_json(os.path.join(self._phase_dir(), STATE_FILE), {"epoch": 0, "done": False, "history": []})
            return
        if state.get("checkpoint"):
            self._checkpoint.read(os.path.join(self._phase_dir(), state["checkpoint"])).expect_partial()
        self.resumed.append((self.phase, state["epoch"]))
        if state["done"]:
            self.model._initial_epoch = 10**9  # phase finished before the restart: run no epoch
            logger.warning("resume: phase %d already finished (%d epochs); skipping it", self.phase, state["epoch"])
        elif state["epoch"]:
            self.model._initial_epoch = state["epoch"]
            print(f"resume: phase {self.phase} continues after epoch {state['epoch']}")

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)) and not self.diverged:
            self.diverged = f"loss became {float(loss)} in phase {self.phase}, batch {batch}"
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items() if _is_number(v)}
        if self.diverged or not math.isfinite(logs.get("loss", 0.0)):
            self.diverged = self.diverged or f"loss became {logs.get('loss')} at epoch {epoch + 1}"
            self.model.stop_training = True
            return  # never overwrite the last good checkpoint with diverged weights
        state = self._state()
        name = f"ckpt-{epoch + 1}"
        self._checkpoint.write(os.path.join(self._phase_dir(), name))
        state.update(epoch=epoch + 1, checkpoint=name, history=state["history"] + [logs])
        _write_json(os.path.join(self._phase_dir(), STATE_FILE), state)
        self._prune(keep_name=name)

    def on_train_end(self, logs=None):
        self.model._initial_epoch = None  # Keras never resets it; the next fit call must start at 0
        if self.diverged:
            return
        state = self._state()
        if not state["done"]:
            state["done"] = True
            _write_json(os.path.join(self._phase_dir(), STATE_FILE), state)

    def restore_last_good(self) -> int:
        """Loads the running phase's last completed-epoch checkpoint into the model; returns that epoch."""
        state = self._state()
        if state and state.get("checkpoint"):
            self._checkpoint.read(os.path.join(self._phase_dir(), state["checkpoint"])).expect_partial()
            return state["epoch"]
        return 0

    def _prune(self, keep_name: str):
        folder = self._phase_dir()
        names = sorted({f.split(".")[0] for f in os.listdir(folder) if f.startswith("ckpt-")},
                       key=lambda n: int(n.split("-")[1]))
        for old in names[: -self.keep]:
            if old != keep_name:
                for f in os.listdir(folder):
                    if f.split(".")[0] == old:
                        os.remove(os.path.join(folder, f))


def _is_number(value) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


# -- run-directory status ---------------------------------------------------------------------------
def write_status(run_dir: str, status: str, **extra) -> None:
    """`running` (with pid/host), `finished` or `failed` (with the reason) in `run_dir/status.json`."""
    document = {"status": status, "pid": os.getpid(), "host": socket.gethostname(), **extra}
    _write_json(os.path.join(run_dir, "status.json"), document)


def is_resumable(run_dir: str) -> bool:
    """An unfinished run whose process is gone (crashed, killed) can be resumed."""
    status = read_json(os.path.join(run_dir, "status.json"))
    if status is None or status["status"] == "finished":
        return False
    if status["status"] == "running" and status.get("host") == socket.gethostname() and _alive(status["pid"]):
        return False  # someone is training it right now
    return True


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed child not yet reaped) is not alive
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return True
