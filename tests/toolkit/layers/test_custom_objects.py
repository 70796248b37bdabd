"""Every custom Keras class registered in toolkit/ saves, reloads in this process AND in a fresh process.

Classes are found by scanning the source for `register_keras_serializable` (modules move: nothing here names
a module path); each needs a tiny case in `CASES`, and a newly registered class without one fails
`test_every_registered_class_has_a_case`. Layers and models go through `tests.harness.run_layer_test` /
`run_model_saving_test` (a child process that imports only `toolkit.saving` + numpy loads the `.keras`
file); losses, schedules, metrics and callbacks get a config round trip and one fresh-process
`keras.saving.deserialize_keras_object` after `toolkit.saving.register_all()`.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import sys

import numpy as np
import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from tests import harness  # noqa: E402

TOOLKIT_DIR = os.path.join(_REPO, "toolkit")


def _is_register(decorator) -> bool:
    node = decorator.func if isinstance(decorator, ast.Call) else decorator
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return name == "register_keras_serializable"


def scan_registered() -> dict:
    """{class or function name: module} for every definition decorated with register_keras_serializable."""
    found = {}
    for folder, _, files in os.walk(TOOLKIT_DIR):
        for file in sorted(files):
            if not file.endswith(".py"):
                continue
            path = os.path.join(folder, file)
            with open(path, encoding="utf-8") as f:
                source = f.read()
            if "register_keras_serializable" not in source:
                continue
            module = os.path.relpath(path, _REPO)[:-3].replace(os.sep, ".")
            module = module[: -len(".__init__")] if module.endswith(".__init__") else module
            for node in ast.walk(ast.parse(source, path)):
                if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and any(map(_is_register, node.decorator_list)):
                    assert node.name not in found, f"{node.name} registered twice: {found[node.name]}, {module}"
                    found[node.name] = module
    return found


def registering_modules() -> set:
    """Modules under toolkit/ whose source calls register_keras_serializable (the decorator or a call)."""
    modules = set()
    for folder, _, files in os.walk(TOOLKIT_DIR):
        for file in files:
            path = os.path.join(folder, file)
            if file.endswith(".py") and file != "saving.py":
                with open(path, encoding="utf-8") as f:
                    if "register_keras_serializable" in f.read():
                        module = os.path.relpath(path, _REPO)[:-3].replace(os.sep, ".")
                        modules.add(module[: -len(".__init__")] if module.endswith(".__init__") else module)
    return modules


REGISTERED = scan_registered()


def resolve(name: str):
    return getattr(importlib.import_module(REGISTERED[name]), name)


# --- tiny cases ----------------------------------------------------------------------------------------------

def _rng():
    return np.random.default_rng(0)


def _tiny_bert_preprocessor():
    import keras

    from toolkit.models import bert

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + "the a cat dog sat on mat good bad film".split()
    keras.utils.set_random_seed(0)
    backbone, tokenizer = bert.tiny_bert(vocab, num_layers=1, hidden_dim=8, num_heads=2, max_sequence_length=16)
    return bert.make_preprocessor(tokenizer, 8, backbone)


def _layer(init, data, shape=None, dtype=None, random=False):
    def run(cls, tmp_dir):
        """In-process checks; returns `(saved .keras path, input data, random at inference)` for the
        fresh-process reload, which one child process does for every class (see `fresh`)."""
        kwargs = init() if callable(init) else init
        values = data() if callable(data) else data
        path = harness.run_layer_test(cls, kwargs, values, expected_output_shape=shape, expected_output_dtype=dtype,
                                      random_at_inference=random, tmp_dir=tmp_dir, fresh_process=False)
        return path, values, random
    return "layer", run


def _model(build, data, random=False):
    def run(cls, tmp_dir):
        model = build(cls)
        assert type(model) is cls
        values = data()
        path = harness.run_model_saving_test(model, values, random_at_inference=random, tmp_dir=tmp_dir,
                                             fresh_process=False)
        return path, values, random
    return "model", run


def _object(build):
    return "object", build


def _bpe_kwargs():
    from toolkit.models.text.bpe import learn_bpe

    bpe = learn_bpe("low low low lower lower lowest", 4)
    return {"vocabulary": dict(bpe.vocabulary), "merges": [f"{a} {b}" for a, b in bpe.merges], "sequence_length": 4}


def _discriminative(cls):
    import keras

    return cls(keras.optimizers.SGD(0.1, momentum=0.9), {"backbone/conv/kernel": 0.1, "backbone/conv/bias": 0.3})


def _vae(cls):
    import keras

    from toolkit.models.vae import build_decoder, build_encoder

    keras.utils.set_random_seed(0)
    variational = cls.__name__ == "VAE"
    return cls(build_encoder((8, 8, 1), 2, "conv", width=2, hidden=4, variational=variational),
               build_decoder((8, 8, 1), 2, "conv", width=2, hidden=4))


def _autoencoder(cls):
    import keras

    from toolkit.models.autoencoders import AnomalyDetector, build_autoencoder

    keras.utils.set_random_seed(0)
    if cls is AnomalyDetector:
        detector = cls(_vae(__import__("toolkit.models.vae", fromlist=["VAE"]).VAE), elbo_samples=3, seed=1)
        detector.threshold.assign(700.0)
        return detector
    kind = cls.__name__.replace("Autoencoder", "").lower()
    options = {"sparse": {"penalty": "kl", "latent_activation": "sigmoid"}, "contractive": {"jacobian": "autodiff"},
               "denoising": {"corruption": "masking", "seed": 2}}.get(kind, {})
    return build_autoencoder(kind, (8, 8, 1), latent_dim=3, architecture="dense", hidden=(4,), **options)


def _word2vec(cls):
    model = cls(vocabulary_size=6, dim=4, negative=2)
    model([np.array([1, 2]), np.array([3, 4])])
    return model


CASES = {
    # layers
    "ImageNormalization": _layer({"mode": "unit", "to_rgb": True}, lambda: _rng().uniform(0, 255, (2, 4, 4, 1)).astype("float32"),
                                 (2, 4, 4, 3), "float32"),
    "BahdanauAttention": _layer({"units": 4}, lambda: {"query": _rng().normal(size=(2, 3)).astype("float32"),
                                                       "values": _rng().normal(size=(2, 5, 6)).astype("float32")},
                                ((2, 6), (2, 5)), ("float32", "float32")),
    "ScalarMix": _layer({"num_layers": 2}, lambda: [_rng().normal(size=(2, 4)).astype("float32"),
                                                    np.ones((2, 4), "float32")], (2, 4), "float32"),
    "ChannelStatistics": _layer({"zero_tol": 0.0}, lambda: _rng().normal(size=(2, 3, 4)).astype("float32"),
                                (6, 4), "float32"),
    "PreActivation": _layer(lambda: {"layer": __import__("keras").layers.Dense(3, activation="relu")},
                            lambda: _rng().normal(size=(2, 4)).astype("float32"), (2, 3), "float32"),
    "TfIdf": _layer({"vocabulary_size": 5}, lambda: _rng().integers(0, 3, (2, 5)).astype("float32"), (2, 5), "float32"),
    "Sampling": _layer({"seed": 1}, lambda: [np.zeros((2, 3), "float32"), np.zeros((2, 3), "float32")], (2, 3),
                       "float32", random=True),
    "CosineTopK": _layer({"num_items": 4, "dim": 3, "k": 2}, lambda: _rng().normal(size=(2, 3)).astype("float32"),
                         ((2, 2), (2, 2))),
    "BertPacker": _layer(lambda: {"preprocessor": _tiny_bert_preprocessor()},
                         lambda: np.array(["the cat sat", "a good film on the mat"]),
                         {"token_ids": (2, 8), "segment_ids": (2, 8), "padding_mask": (2, 8)},
                         {"token_ids": "int32", "segment_ids": "int32", "padding_mask": "int32"}),
    "MixtureOfExperts": _layer({"num_experts": 3, "hidden_dim": 4, "top_k": 2},
                               lambda: _rng().normal(size=(2, 3, 5)).astype("float32"), (2, 3, 5), "float32"),
    "HyperConnection": _layer(lambda: {"branch": __import__("keras").layers.Dense(4), "num_streams": 2},
                              lambda: _rng().normal(size=(2, 2, 4)).astype("float32"), (2, 2, 4), "float32"),
    "EulerODEBlock": _layer(lambda: {"branch": __import__("keras").layers.Dense(3, activation="tanh"), "steps": 2},
                            lambda: _rng().normal(size=(2, 3)).astype("float32"), (2, 3), "float32"),
    "SubtractLastValue": _layer({}, lambda: _rng().normal(size=(2, 4, 2)).astype("float32"), (2, 4, 2), "float32"),
    "AddLastValue": _layer({}, lambda: {"change": _rng().normal(size=(2, 3)).astype("float32"),
                                        "window": _rng().normal(size=(2, 4, 2)).astype("float32")}, (2, 3), "float32"),
    "ClassToken": _layer({}, lambda: _rng().normal(size=(2, 4, 3)).astype("float32"), (2, 5, 3), "float32"),
    "LoRAEinsumDense": _layer(lambda: {"base": __import__("keras").layers.EinsumDense("abc,cd->abd", (None, 3)),
                                       "rank": 2}, lambda: _rng().normal(size=(2, 4, 5)).astype("float32"),
                              (2, 4, 3), "float32"),
    "GCNConv": _layer({"units": 3, "activation": "relu"}, lambda: {"features": _rng().normal(size=(4, 2)).astype(
        "float32"), "adjacency": np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], "float32")},
        (4, 3), "float32"),
    "MessagePassing": _layer({"units": 3, "aggregation": "mean"}, lambda: {"features": _rng().normal(size=(3, 2)).astype(
        "float32"), "adjacency": np.array([[0, 1, 0], [1, 0, 2], [0, 2, 0]], "float32")}, (3, 3), "float32"),
    "EndOfWordBytePairTokenizer": _layer(_bpe_kwargs, lambda: np.array(["low lower", "lowest"]), (2, 4), "int32"),
    "PositionalSelfAttention": _layer({"num_heads": 2, "key_dim": 2, "positions": "rope"},
                                      lambda: _rng().normal(size=(2, 3, 4)).astype("float32"), (2, 3, 4), "float32"),
    "BM25Tokenizer": _layer({"vocabulary": ["cat", "mat", "sat"]}, lambda: np.array(["The cat sat", "a MAT"]),
                            (2, 3), "int32"),
    "BM25Scores": _layer({"vocabulary_size": 3, "num_items": 2, "nnz": 4},
                         lambda: {"term_ids": np.array([[1, 2, 0], [3, 3, 1]], "int32")}, (2, 2), "float32"),
    "HybridTopK": _layer({"num_chunks": 4, "dim": 3, "num_docs": 3, "k": 2, "mode": "hybrid", "alpha": 0.5},
                         lambda: {"queries": _rng().normal(size=(2, 3)).astype("float32"),
                                  "sparse_scores": _rng().uniform(0, 2, (2, 4)).astype("float32")},
                         {"scores": (2, 2), "similarities": (2, 2), "neighbors": (2, 2)}),
    # models
    "VAE": _model(_vae, lambda: _rng().uniform(0, 1, (2, 8, 8, 1)).astype("float32")),
    "Autoencoder": _model(_vae, lambda: _rng().uniform(0, 1, (2, 8, 8, 1)).astype("float32")),
    "UndercompleteAutoencoder": _model(_autoencoder, lambda: _rng().uniform(0, 255, (2, 8, 8, 1)).astype("float32")),
    "SparseAutoencoder": _model(_autoencoder, lambda: _rng().uniform(0, 255, (2, 8, 8, 1)).astype("float32")),
    "DenoisingAutoencoder": _model(_autoencoder, lambda: _rng().uniform(0, 255, (2, 8, 8, 1)).astype("float32")),
    "ContractiveAutoencoder": _model(_autoencoder, lambda: _rng().uniform(0, 255, (2, 8, 8, 1)).astype("float32")),
    "AnomalyDetector": _model(_autoencoder, lambda: _rng().uniform(0, 255, (2, 8, 8, 1)).astype("float32")),
    "TextGenerator": _model(lambda cls: cls(list("ab "), sequence_length=4, num_layers=1, hidden_dim=4, num_heads=2),
                            lambda: np.array([[2, 3, 4, 0]])),
    "GloVe": _model(lambda cls: cls(vocabulary_size=4, dim=3), lambda: [np.array([1, 2]), np.array([2, 3])]),
    "Word2Vec": _model(_word2vec, lambda: [np.array([1, 2]), np.array([3, 4])], random=True),  # negatives drawn in-graph
    # losses, schedules, metrics, callbacks
    "DiceLoss": _object(lambda cls: cls(smooth=1.0, ignore_background=True)),
    "FocalLoss": _object(lambda cls: cls(gamma=2.0, alpha=[0.25, 0.75])),
    "CEDiceLoss": _object(lambda cls: cls(ce_weight=0.5, dice_weight=1.5)),
    "SmoothedSparseCategoricalCrossentropy": _object(lambda cls: cls(smoothing=0.2)),
    "YoloLoss": _object(lambda cls: cls([[1.0, 1.0], [2.0, 3.0]], lambda_coord=4.0)),
    "SSDLoss": _object(lambda cls: cls(3, alpha=0.5)),
    "CyclicalLearningRate": _object(lambda cls: cls(1e-3, 1e-2, 4)),
    "LinearWarmupDecay": _object(lambda cls: cls(1e-3, 10, warmup_steps=2)),
    "MeanDice": _object(lambda cls: cls(3)),
    "LayerStatisticsMonitor": _object(lambda cls: cls(layers=["dense"], every=2)),
    "DiscriminativeOptimizer": _object(_discriminative),
    # a registered loss function: its round trip is the compiled GloVe model's reload in
    # tests/toolkit/models/text/test_glove.py
    "_half_weighted_squares": ("function", None),
}


def test_the_scan_finds_the_known_classes():
    assert {"BertPacker", "ScalarMix", "TfIdf", "VAE", "ChannelStatistics"} <= set(REGISTERED), REGISTERED


def test_every_registered_class_has_a_case():
    missing = sorted(set(REGISTERED) - set(CASES))
    assert not missing, f"registered classes without a serialization case in {__file__}: {missing}"


SAVED = sorted(n for n in REGISTERED if CASES.get(n, ("",))[0] in ("layer", "model"))
OBJECTS = sorted(n for n in REGISTERED if CASES.get(n, ("",))[0] == "object")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """Every layer / model case saved (after its in-process checks), then ONE fresh child process that imports
    only `toolkit.saving` loads them all: {name: (expected outputs, fresh outputs, random) or the error}."""
    import toolkit.saving

    saved, results = {}, {}
    for name in SAVED:
        try:
            saved[name] = CASES[name][1](resolve(name), str(tmp_path_factory.mktemp(name)))
        except Exception as error:  # reported by that class's test
            results[name] = error
    names = list(saved)
    expected = [harness.flatten(toolkit.saving.load_model(saved[n][0])(harness._tensors(saved[n][1]), training=False))
                for n in names]
    outputs = harness.fresh_process_outputs([(saved[n][0], saved[n][1]) for n in names])
    for name, want, got in zip(names, expected, outputs):
        results[name] = (want, got, saved[name][2])
    return results


@pytest.mark.parametrize("name", SAVED)
def test_saves_and_reloads_in_a_fresh_process(name, fresh):
    result = fresh[name]
    if isinstance(result, Exception):
        raise result
    want, got, random = result
    if random:  # noise drawn at inference: the same structure and shapes
        assert [o.shape for o in got] == [o.shape for o in want], name
    else:
        harness.assert_outputs_match(want, got, where=f"{name}: fresh-process reload")


@pytest.fixture(scope="module")
def deserialized():
    """One fresh process deserializes every loss / schedule / metric / callback case."""
    objects = [CASES[n][1](resolve(n)) for n in OBJECTS]
    rows = harness.run_serialization_test(objects, steps=[0, 1, 3, 7, 12])
    return {row["class"]: row for row in rows}


@pytest.mark.parametrize("name", OBJECTS)
def test_config_round_trip_and_fresh_process_deserialize(name, deserialized):
    assert name in deserialized, sorted(deserialized)


def test_register_all_imports_every_registering_module():
    """Each module that registers a custom object is one of `REGISTERING_MODULES` (a package or module) or
    inside one, and after `register_all()` in a fresh process every such module has been imported."""
    from toolkit import saving

    modules = sorted(registering_modules())
    assert modules, "the scan found nothing"
    uncovered = [m for m in modules if not any(m == p or m.startswith(p + ".") for p in saving.REGISTERING_MODULES)]
    assert not uncovered, f"not under any of toolkit.saving.REGISTERING_MODULES: {uncovered}"
    done = harness.run_python(
        "import json, sys, toolkit.saving; toolkit.saving.register_all(); "
        "print('MODULES ' + json.dumps(sorted(m for m in sys.modules if m.startswith('toolkit'))))",
        what="register_all() in a fresh process")
    imported = set(json.loads(next(line for line in done.stdout.splitlines() if line.startswith("MODULES "))[8:]))
    not_imported = [m for m in modules if m not in imported]
    assert not not_imported, (f"register_all() does not import {not_imported} (each package's __init__ must "
                              "import its registering modules)")
