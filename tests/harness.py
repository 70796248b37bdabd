"""Shared test harness: layer / model serialization tests that reload in THIS process and in a FRESH one.

In the style of keras-hub's `TestCase.run_layer_test` / `run_model_saving_test`, with one addition that matters
here: users train in one shell and load in another, so every saved `.keras` file is also loaded by a child
Python process that imports only `toolkit.saving` and numpy (no module that defines the custom class), through
`toolkit.saving.load_model`, and its outputs must match the live model's.

    from tests import harness
    harness.run_layer_test(ScalarMix, {"num_layers": 2}, [x, x], expected_output_shape=(2, 4))
    harness.run_model_saving_test(model, x)
    harness.run_subprocess([harness.PYTHON, "-c", "..."], timeout=120)

Inputs may be one array, a list/tuple of arrays (passed as one list argument) or a dict of arrays (passed as
keyword arguments to a layer, or as a dict to a model). Numpy string arrays become `tf.string` inputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_VENV_PYTHON = os.path.join(REPO, ".venv", "bin", "python")
# The repo's python: the virtualenv's when there is one, else the interpreter running the tests.
PYTHON = _VENV_PYTHON if os.path.exists(_VENV_PYTHON) else sys.executable
CHILD_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow", "PYTHONUNBUFFERED": "1"}
ATOL = 1e-5


def child_env(extra: dict | None = None) -> dict:
    """os.environ + quiet TensorFlow + the TF backend (+ `extra`), with the repo importable."""
    env = {**os.environ, **CHILD_ENV, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join([REPO] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def tail(text: str, lines: int = 40) -> str:
    return "\n".join((text or "").strip().splitlines()[-lines:])


def run_subprocess(args, timeout: float = 300, expect_returncode: int | None = 0, env: dict | None = None,
                   cwd: str | None = None, what: str | None = None) -> subprocess.CompletedProcess:
    """Runs `args` (a list) with the repo's child environment; returns the CompletedProcess (text).

    Args:
        expect_returncode: assert this exit status (None: don't check).
        env: extra environment variables.
        what: a short description for the assertion message (default: the command line).

    Raises:
        AssertionError: on a timeout or an unexpected exit status, with the command and the tails of the
            child's stdout and stderr.
    """
    args = [str(a) for a in args]
    label = what or " ".join(args)[:300]
    try:
        done = subprocess.run(args, cwd=cwd or REPO, env=child_env(env), capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as error:
        out = error.stdout.decode() if isinstance(error.stdout, bytes) else (error.stdout or "")
        err = error.stderr.decode() if isinstance(error.stderr, bytes) else (error.stderr or "")
        raise AssertionError(f"{label}: timed out after {timeout:.0f} s\n--- stdout tail ---\n{tail(out)}\n"
                             f"--- stderr tail ---\n{tail(err)}") from None
    if expect_returncode is not None and done.returncode != expect_returncode:
        raise AssertionError(f"{label}: exit status {done.returncode} (expected {expect_returncode})\n"
                             f"--- stdout tail ---\n{tail(done.stdout)}\n--- stderr tail ---\n{tail(done.stderr)}")
    return done


def run_python(code: str, *args, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """`python -c code args...` with the repo's python (see `run_subprocess`)."""
    return run_subprocess([PYTHON, "-c", code, *args], timeout=timeout, **kwargs)


# --- inputs / outputs <-> .npz -------------------------------------------------------------------------------

def _to_numpy(value):
    if hasattr(value, "numpy"):
        value = value.numpy()
    value = np.asarray(value)
    if value.dtype == object:  # tf.string tensors come back as bytes objects
        value = value.astype(bytes)
    return value


def flatten(structure) -> list:
    """Nested dict (sorted keys) / list / tuple of tensors -> flat list of numpy arrays."""
    if isinstance(structure, dict):
        return [a for k in sorted(structure) for a in flatten(structure[k])]
    if isinstance(structure, (list, tuple)):
        return [a for v in structure for a in flatten(v)]
    return [_to_numpy(structure)]


def _save_inputs(path: str, data) -> None:
    if isinstance(data, dict):
        arrays = {f"dict:{k}": np.asarray(v) for k, v in data.items()}
    elif isinstance(data, (list, tuple)):
        arrays = {f"list:{i:03d}": np.asarray(v) for i, v in enumerate(data)}
    else:
        arrays = {"single": np.asarray(data)}
    np.savez(path, **arrays)


# The child: imports toolkit.saving and numpy only (TensorFlow/Keras come in through load_model), checks
# that no module defining a custom class was imported first, loads, calls the model, writes the outputs.
_CHILD = r"""
import json, sys
import numpy as np
import toolkit.saving

jobs = json.loads(sys.argv[1])
preloaded = sorted(m for m in sys.modules if m.startswith("toolkit.") and m != "toolkit.saving")
if preloaded:
    raise SystemExit(f"the child imported toolkit modules before loading: {preloaded}")

def flat(s):
    if isinstance(s, dict):
        return [a for k in sorted(s) for a in flat(s[k])]
    if isinstance(s, (list, tuple)):
        return [a for v in s for a in flat(v)]
    v = np.asarray(s.numpy() if hasattr(s, "numpy") else s)
    return [v.astype(bytes) if v.dtype == object else v]

def tensor(a):
    if a.dtype.kind in "SU":  # strings: a tf.string tensor (Keras does not convert numpy strings)
        import tensorflow as tf
        return tf.constant(a.astype(bytes))
    return a

for job in jobs:
    model = toolkit.saving.load_model(job["model"])
    with np.load(job["inputs"]) as f:
        keys = sorted(f.files)
        if keys == ["single"]:
            x = tensor(f["single"])
        elif keys[0].startswith("dict:"):
            x = {k[5:]: tensor(f[k]) for k in keys}
        else:
            x = [tensor(f[k]) for k in keys]
    outputs = flat(model(x, training=False))
    np.savez(job["outputs"], **{f"out{i:03d}": o for i, o in enumerate(outputs)})
    print("loaded", job["model"], type(model).__name__, [type(l).__name__ for l in model.layers])
"""


def fresh_process_outputs(jobs: list, timeout: float = 300) -> list:
    """Loads each `(model_path, input_data)` in ONE fresh child process; returns each model's flat outputs.

    The child imports only `toolkit.saving` and numpy, then calls `toolkit.saving.load_model`.
    """
    workdir = tempfile.mkdtemp(prefix="fresh_")
    specs = []
    for i, (model_path, data) in enumerate(jobs):
        inputs = os.path.join(workdir, f"in{i}.npz")
        _save_inputs(inputs, data)
        specs.append({"model": os.fspath(model_path), "inputs": inputs, "outputs": os.path.join(workdir, f"out{i}.npz")})
    run_python(_CHILD, json.dumps(specs), timeout=timeout,
               what=f"fresh-process load of {[s['model'] for s in specs]}")
    results = []
    for spec in specs:
        with np.load(spec["outputs"]) as f:
            results.append([f[k] for k in sorted(f.files)])
    return results


def assert_outputs_match(expected: list, actual: list, atol: float = ATOL, where: str = "") -> None:
    assert len(expected) == len(actual), f"{where}: {len(expected)} outputs vs {len(actual)}"
    for i, (e, a) in enumerate(zip(expected, actual)):
        assert e.shape == a.shape, f"{where}: output {i} shape {e.shape} vs {a.shape}"
        if e.dtype.kind in "SUO" or a.dtype.kind in "SUO":
            assert e.astype(bytes).tolist() == a.astype(bytes).tolist(), f"{where}: output {i} differs"
        else:
            np.testing.assert_allclose(a, e, atol=atol, rtol=0, err_msg=f"{where}: output {i}")


# --- the two entry points --------------------------------------------------------------------------------------

def _tensors(data):
    import tensorflow as tf

    def one(a):
        a = np.asarray(a)
        return tf.constant(a.astype(bytes)) if a.dtype.kind in "SU" else a

    if isinstance(data, dict):
        return {k: one(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [one(v) for v in data]
    return one(data)


def _input_like(name, array):
    import keras

    array = np.asarray(array)
    dtype = "string" if array.dtype.kind in "SU" else str(array.dtype)
    return keras.Input(shape=array.shape[1:], dtype=dtype, name=name)


def _check_structure(actual, expected, what):
    """`expected` mirrors the output structure (a tuple/list/dict of shapes or dtypes, or one of them)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and sorted(actual) == sorted(expected), f"{what}: {actual} vs {expected}"
        for k in expected:
            _check_structure(actual[k], expected[k], what)
    elif isinstance(expected, list) or (isinstance(expected, tuple) and expected and
                                        not isinstance(expected[0], (int, type(None)))):
        assert isinstance(actual, (list, tuple)) and len(actual) == len(expected), f"{what}: {actual} vs {expected}"
        for a, e in zip(actual, expected):
            _check_structure(a, e, what)
    elif what == "shape":
        assert tuple(actual.shape) == tuple(expected), f"output shape {tuple(actual.shape)} != {tuple(expected)}"
    else:
        import keras

        got = keras.backend.standardize_dtype(actual.dtype)
        assert got == keras.backend.standardize_dtype(expected), f"output dtype {got} != {expected}"


def _serialized(obj) -> dict:
    """The JSON form of `obj`'s config (nested objects serialized; JSON-serializable or a TypeError)."""
    import keras

    return json.loads(json.dumps(keras.saving.serialize_keras_object(obj)["config"]))


def _save_and_compare(model, input_data, expected_outputs, random_at_inference, tmp_dir, fresh_process, where):
    import toolkit.saving

    path = os.path.join(tmp_dir or tempfile.mkdtemp(prefix="saving_"), f"{model.name}.keras")
    model.save(path)
    reloaded = toolkit.saving.load_model(path)
    if not random_at_inference:
        assert_outputs_match(expected_outputs, flatten(reloaded(_tensors(input_data), training=False)),
                             where=f"{where}: in-process reload")
    if fresh_process:
        (fresh,) = fresh_process_outputs([(path, input_data)])
        if not random_at_inference:
            assert_outputs_match(expected_outputs, fresh, where=f"{where}: fresh-process reload")
        else:  # still the same structure and shapes
            assert [o.shape for o in fresh] == [o.shape for o in expected_outputs], where
    return path


def run_layer_test(cls, init_kwargs: dict, input_data, expected_output_shape=None, expected_output_dtype=None,
                   random_at_inference: bool = False, fresh_process: bool = True, tmp_dir: str | None = None) -> str:
    """Builds `cls(**init_kwargs)`, calls it, checks shape/dtype, config round trip, `.keras` reloads.

    Args:
        cls: the layer class.
        init_kwargs: constructor arguments (tiny).
        input_data: one array, a list of arrays (one list argument) or a dict (keyword arguments).
        expected_output_shape / expected_output_dtype: one shape (tuple of ints) / dtype, or a structure
            (list, tuple of shapes, dict) mirroring the outputs.
        random_at_inference: the layer draws noise at inference (e.g. `Sampling`): output values are not
            compared after reloading, only their shapes.
        fresh_process: also reload in a child process (the point of this harness; off only to save time).
        tmp_dir: where to write the `.keras` file (default: a new temp folder).

    Returns:
        the saved `.keras` path.
    """
    import keras

    layer = cls(**init_kwargs)
    if isinstance(input_data, dict):
        output = layer(**_tensors(input_data))
    else:
        output = layer(_tensors(input_data))
    if expected_output_shape is not None:
        _check_structure(output, expected_output_shape, "shape")
    if expected_output_dtype is not None:
        _check_structure(output, expected_output_dtype, "dtype")

    config = layer.get_config()
    revived = cls.from_config(config)
    # compared serialized: a config may hold objects (keras-hub preprocessors hold their tokenizer)
    assert _serialized(revived) == _serialized(layer), f"{cls.__name__}: from_config(get_config()) changed the config"

    if isinstance(input_data, dict):
        inputs = {k: _input_like(k, v) for k, v in input_data.items()}
        outputs = layer(**inputs)
    elif isinstance(input_data, (list, tuple)):
        inputs = [_input_like(f"input_{i}", v) for i, v in enumerate(input_data)]
        outputs = layer(inputs)
    else:
        inputs = _input_like("input", input_data)
        outputs = layer(inputs)
    model = keras.Model(inputs, outputs, name=f"{cls.__name__.lower()}_model")
    expected = flatten(model(_tensors(input_data), training=False))
    if not random_at_inference:
        assert_outputs_match(flatten(output), expected, where=f"{cls.__name__}: layer vs functional model")
    return _save_and_compare(model, input_data, expected, random_at_inference, tmp_dir, fresh_process,
                             cls.__name__)


def run_model_saving_test(model, input_data, random_at_inference: bool = False, fresh_process: bool = True,
                          tmp_dir: str | None = None) -> str:
    """Saves `model` as `.keras`, reloads it in this process and in a fresh one; outputs must match (atol 1e-5).

    Returns:
        the saved `.keras` path.
    """
    expected = flatten(model(_tensors(input_data), training=False))
    return _save_and_compare(model, input_data, expected, random_at_inference, tmp_dir, fresh_process,
                             type(model).__name__)


# --- losses, schedules, metrics, callbacks: config round trip + fresh-process deserialize -----------------------

_DESERIALIZE_CHILD = r"""
import json, sys
import toolkit.saving
toolkit.saving.register_all()
import keras
out = []
for item in json.loads(sys.argv[1]):
    obj = keras.saving.deserialize_keras_object(item["config"])
    row = {"class": type(obj).__name__, "config": keras.saving.serialize_keras_object(obj)["config"]}
    if item.get("steps") is not None:  # a learning-rate schedule: its values
        row["values"] = [float(obj(s)) for s in item["steps"]]
    out.append(row)
print("RESULT " + json.dumps(out, default=str))
"""


def run_serialization_test(objects: list, steps: list | None = None, fresh_process: bool = True) -> list:
    """Config round trip of each object (`from_config(get_config())`), and one fresh child process that
    deserializes them all after `toolkit.saving.register_all()`; schedules are evaluated at `steps` too.

    Returns:
        the child's rows (class name, config, values).
    """
    import keras

    items = []
    for obj in objects:
        config = _serialized(obj)
        assert _serialized(type(obj).from_config(obj.get_config())) == config, f"{type(obj).__name__}: config round trip"
        serialized = keras.saving.serialize_keras_object(obj)
        revived = keras.saving.deserialize_keras_object(serialized)
        assert type(revived) is type(obj), f"{type(obj).__name__} deserialized as {type(revived).__name__}"
        is_schedule = isinstance(obj, keras.optimizers.schedules.LearningRateSchedule)
        items.append({"config": serialized, "steps": steps if is_schedule and steps else None,
                      "values": [float(obj(s)) for s in steps] if is_schedule and steps else None,
                      "class": type(obj).__name__, "own": config})
    if not fresh_process:
        return []
    done = run_python(_DESERIALIZE_CHILD, json.dumps([{k: i[k] for k in ("config", "steps")} for i in items]),
                      what="fresh-process deserialize_keras_object")
    rows = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
    for item, row in zip(items, rows):
        assert row["class"] == item["class"], (row["class"], item["class"])
        assert item["own"] == row["config"], f"{item['class']}: fresh-process config differs"
        if item["values"] is not None:
            np.testing.assert_allclose(row["values"], item["values"], rtol=1e-6, err_msg=item["class"])
    return rows
