"""The text-classifier app: train -> evaluate -> export (raw strings in) -> predict, registry, CLI."""

import numpy as np
import pytest

from apps import cli, text_classifier
from toolkit.data.images import DataError
from toolkit.export import load

POSITIVE = ["a wonderful film", "great acting and a great plot", "lovely, moving and wonderful", "great fun",
            "a lovely story", "wonderful music", "great great film", "moving and lovely"]
NEGATIVE = ["a dull film", "awful acting and a dull plot", "boring, awful and dull", "awful mess",
            "a boring story", "dull music", "awful awful film", "boring and dull"]


def _csv(tmp_path):
    path = tmp_path / "reviews.csv"
    rows = [f'"{t}",{label}' for t, label in zip(POSITIVE + NEGATIVE, ["pos"] * 8 + ["neg"] * 8)]
    path.write_text("review,sentiment\n" + "\n".join(rows) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("text")
    return text_classifier.train(_csv(tmp), text_column="review", label_column="sentiment", model="tfidf-mlp",
                                 epochs=15, batch_size=8, validation_split=0.25, patience=-1, ngrams=1,
                                 learning_rate=1e-2, verbose=0, run_dir=str(tmp / "runs"), seed=1)


def test_train_reports_held_out_metrics(run):
    assert run.info["class_names"] == ["neg", "pos"] and run.info["model"] == "tfidf-mlp"
    assert run.metrics["evaluated_on"] == "validation"
    assert sum(map(sum, run.metrics["confusion_matrix"])) == 4
    assert set(run.plots) >= {"confusion_matrix"}
    predictions = text_classifier.predict(run, ["wonderful and lovely", "awful and boring"])
    assert [p["label"] for p in predictions] == ["pos", "neg"]


def test_export_takes_raw_strings_with_parity(run, tmp_path):
    path = run.export(str(tmp_path / "sentiment"))
    predictor = load(path)
    assert predictor.metadata["task"] == "text_classification"
    assert set(predictor.signatures) >= {"serving_default", "serving_dense"}
    sentences = ["wonderful and lovely", "awful and boring", "never seen words", ""]
    exported = predictor({"text": sentences})
    live = run.adapter.run_raw(run.model, {"text": np.array(sentences, dtype=object)})
    np.testing.assert_allclose(exported["scores"], live["scores"].numpy(), atol=1e-5)
    assert exported["labels"].tolist() == live["labels"].numpy().tolist()
    assert set(exported) == {"scores", "classes", "labels"}
    assert text_classifier.predict(path, ["great and wonderful"])[0]["label"] == "pos"
    metrics = text_classifier.evaluate(path, (POSITIVE + NEGATIVE, ["pos"] * 8 + ["neg"] * 8))
    assert metrics["accuracy"] >= 0.75
    tpu = run.export(str(tmp_path / "sentiment_tpu"), target="tpu", batch_size=4)
    assert load(tpu).metadata["target"] == "tpu"


def test_load_run_and_cli(run, tmp_path, capsys):
    reopened = text_classifier.APP.load_run(run.run_dir)
    assert reopened.info["class_names"] == ["neg", "pos"]
    assert cli.main(["text-classifier", "predict", run.run_dir, "great fun", "--json"]) == 0
    assert '"label": "pos"' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["text-classifier", "train", "--help"])
    help_text = capsys.readouterr().out
    for flag in ("--model", "--text-column", "--label-column", "--idf", "--scalar-mix", "--embeddings"):
        assert flag in help_text


def test_sequence_model_through_the_app(tmp_path):
    run = text_classifier.train((POSITIVE + NEGATIVE, [1] * 8 + [0] * 8), class_names="neg,pos", model="gru",
                                epochs=1, batch_size=8, validation_split=0.25, sequence_length=8,
                                embedding_dim=8, units=8, verbose=0, run_dir=str(tmp_path))
    assert run.model.get_layer("classifier").get_layer("gru_1") is not None
    assert len(text_classifier.predict(run, ["great"])) == 1


def test_registry_and_named_errors(tmp_path):
    with pytest.raises(ValueError, match=r"unknown text model 'nope'; available: \[.*'tfidf-mlp'"):
        text_classifier.train((POSITIVE, NEGATIVE), model="nope", run_dir=str(tmp_path))
    calls = []

    def build(data, config):
        calls.append(data.class_names)
        return text_classifier.MODELS["cnn"].build(data, config)

    text_classifier.register_model("my-cnn", build, description="test")
    try:
        run = text_classifier.train((POSITIVE + NEGATIVE, ["pos"] * 8 + ["neg"] * 8), model="my-cnn", epochs=1,
                                    validation_split=0.25, sequence_length=8, embedding_dim=4, units=4, verbose=0,
                                    run_dir=str(tmp_path))
        assert calls == [["neg", "pos"]] and run.info["model"] == "my-cnn"
    finally:
        text_classifier.MODELS.pop("my-cnn", None)
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nfine,pos\nok,maybe\n")
    with pytest.raises(DataError, match=r"bad.csv row 3 .*label 'maybe' is not in the class list \['neg', 'pos'\]"):
        text_classifier.train(str(bad), class_names="neg,pos", run_dir=str(tmp_path))


def test_evaluate_takes_the_files_encoding(run, tmp_path, capsys):
    path = tmp_path / "latin.csv"
    rows = [f'"{t} café",{label}' for t, label in zip(POSITIVE + NEGATIVE, ["pos"] * 8 + ["neg"] * 8)]
    path.write_bytes(("review,sentiment\n" + "\n".join(rows) + "\n").encode("cp1252"))
    assert cli.main(["text-classifier", "evaluate", run.run_dir, "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert "latin.csv is not valid utf-8 (byte 0xe9 at line 2)" in err and "--encoding cp1252" in err
    assert cli.main(["text-classifier", "evaluate", run.run_dir, "--data", str(path), "--encoding", "cp1252",
                     "--json"]) == 0
    assert '"accuracy"' in capsys.readouterr().out
