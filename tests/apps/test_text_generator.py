"""The text-generator app end to end: train on a .txt -> perplexity metrics -> generate (run and export, the
same seeded text) -> export signatures (in-graph decode) -> evaluate from the export -> the CLI verbs."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from apps import cli, text_generator
from apps.specs import text_generator as spec
from toolkit.data import DataError
from toolkit.export import load
from toolkit.models.text import generator

TINY = dict(epochs=2, batch_size=16, sequence_length=12, num_layers=1, hidden_dim=16, num_heads=2, dropout=0.0,
            learning_rate=1e-2, generate_tokens=8, temperature=0.7, verbose=0, patience=-1, tensorboard=False)
TEXT = "abc abd abe " * 60


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("text_generator")
    (root / "corpus").mkdir()
    (root / "corpus" / "part1.txt").write_text(TEXT[:360])
    (root / "corpus" / "part2.txt").write_text(TEXT[360:])
    (root / "held.txt").write_text("abd abe abc " * 10)
    run = text_generator.train(str(root / "corpus"), test_data=str(root / "held.txt"), run_dir=str(root / "runs"),
                               **TINY)
    return run, root


def test_train_metrics_and_generation(trained):
    run, root = trained
    m = run.metrics
    assert m["evaluated_on"] == "test" and m["num_tokens"] == 9 * 12  # 120 held-out characters: 9 whole windows
    assert m["perplexity"] == pytest.approx(np.exp(m["cross_entropy"]), rel=1e-6)
    assert m["bits_per_token"] == pytest.approx(m["cross_entropy"] / np.log(2), rel=1e-6)
    assert m["perplexity"] < 4.0  # a uniform guess over the 6 characters scores 6
    assert run.model.vocabulary == generator.build_vocabulary(TEXT[:360] + "\n" + TEXT[360:])
    greedy = text_generator.generate(run, ["ab"], max_tokens=6, temperature=0.0)
    assert len(greedy[0]) == 6 and set(greedy[0]) <= set("abcde \n")
    sampled = text_generator.generate(run, ["ab", "a"], max_tokens=10, temperature=1.0, top_k=3, seed=4)
    assert sampled == text_generator.generate(run, ["ab", "a"], max_tokens=10, temperature=1.0, top_k=3, seed=4)
    rows = text_generator.predict(run, ["ab", ""])
    assert [len(r["text"]) for r in rows] == [8, 8] and rows[0]["input"] == "ab"
    assert os.listdir(os.path.join(run.run_dir, "checkpoints"))  # per-epoch checkpoints: a re-run resumes
    with open(os.path.join(run.run_dir, "status.json")) as f:
        assert json.load(f)["status"] == "finished"


def test_export_generates_in_graph_and_evaluates_the_same(trained):
    run, root = trained
    path = run.export(str(root / "export"))
    predictor = load(path)
    assert {"serving_default", "serving_dense", "generate", "log_likelihood"} <= set(predictor.signatures)
    # the export's own loop, called with nothing but TensorFlow: prompt string in, text out
    loaded = tf.saved_model.load(path)
    served = loaded.signatures["serving_default"](prompt=tf.constant(["ab", "abc a"]))
    assert served["token_ids"].shape == (2, 8)
    assert [t.decode() for t in served["text"].numpy()] == [r["text"] for r in text_generator.predict(run, ["ab", "abc a"])]
    options = dict(max_tokens=9, temperature=0.9, top_k=2, seed=7)
    assert text_generator.generate(path, ["ab", "b"], **options) == text_generator.generate(run, ["ab", "b"], **options)
    from_export = text_generator.evaluate(os.path.dirname(path), str(root / "held.txt"))
    assert from_export["cross_entropy"] == pytest.approx(run.metrics["cross_entropy"], abs=1e-5)
    with pytest.raises(ValueError, match="text-generator cannot export tflite for target cpu"):
        run.export(str(root / "refused"), formats=("saved_model", "tflite"))


def test_cli_generate_and_predict(trained, capsys):
    run, root = trained
    code = cli.main(["text-generator", "generate", run.run_dir, "--prompt", "ab", "--prompt", "a", "--max-tokens",
                     "5", "--temperature", "0", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0 and [r["prompt"] for r in rows] == ["ab", "a"]
    assert rows[0]["text"] == text_generator.generate(run, ["ab"], max_tokens=5, temperature=0.0)[0]


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        text_generator.train(str(tmp_path / "missing.txt"), run_dir=str(tmp_path), **TINY)
    (tmp_path / "short.txt").write_text("abc")
    with pytest.raises(DataError, match="sequence_length=12 needs at least 13"):
        text_generator.train(str(tmp_path / "short.txt"), run_dir=str(tmp_path), **TINY)
    with pytest.raises(ValueError, match=r"hidden_dim \(10\) must be divisible by num_heads \(4\)"):
        text_generator.APP.make_config(hidden_dim=10, num_heads=4)
    assert spec.LEVELS == generator.LEVELS
