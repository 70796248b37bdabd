"""Conformance: question-answerer (a tiny local BERT preset, hand-made (question, context, answer) rows as JSONL for
training and CSV for evaluation) x train / evaluate / export / predict / TF-only load / serve, each step in a new
process through the CLI.

The export's raw signature takes two strings (`question`, `context`), which the one-input cells of
`cells.define_matrix` do not model, so this file defines its cells itself on the same `cells.Family` steps.
The default set is train, export-cpu, evaluate (run dir vs export), predict (run dir vs export) and the TF-only
load; tpu, gpu and serve are slow-marked.
"""

import csv
import json
import os

import pytest

from tests import harness
from tests.conformance import cells

TASK = "question-answerer"
ROWS = [  # hand-made: the answer is a span of the context (answer_start given for half of them)
    ("Who wrote the letter?", "The letter was written by Ann in Paris.", "Ann"),
    ("Where is the cat?", "The cat sat on the mat.", "on the mat"),
    ("Who sat on the mat?", "Bob sat on the mat, not Ann.", "Bob"),
    ("Where was the letter?", "The letter was in the box in Rome.", "in the box"),
    ("What colour is the door?", "Their house has a bright red door.", "bright red"),
    ("Who won the match?", "After a long final set, Sara won the match.", "Sara"),
    ("When was the bridge opened?", "The old bridge was opened in 1887.", "1887"),
    ("What does the shop sell?", "The shop on the corner sells fresh bread.", "fresh bread"),
]
QUESTIONS = [{"question": "Who wrote it?", "context": "It was written by Ann in Paris."},
             {"question": "Where is the café?", "context": "The café is in the box in Rome."}]  # non-ASCII offsets
INPUTS = [json.dumps(q) for q in QUESTIONS]


@pytest.fixture(scope="module")
def family(data_root, tmp_path_factory, serve_base):
    root = data_root / "qa"
    root.mkdir(exist_ok=True)
    checkpoint = cells.bert_preset(str(root), [t for row in ROWS for t in row[:2]])
    train = root / "rows.jsonl"
    with open(train, "w", encoding="utf-8") as f:
        for i, (q, c, a) in enumerate(ROWS):
            f.write(json.dumps({"question": q, "context": c, "answer": a,
                                **({"answer_start": c.index(a)} if i % 2 else {})}) + "\n")
    held = root / "held.csv"
    with open(held, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "context", "answer"])
        writer.writerows(ROWS[:4])
    return cells.Family(TASK, None, tmp_path_factory.mktemp("question_answerer"),
                        ["--data", str(train), "--checkpoint", checkpoint, "--sequence-length", "32",
                         "--batch-size", "4", "--max-answer-length", "6", "--validation-split", "0.25"],
                        str(held), INPUTS, serve_base)


def _tf_only(path: str) -> dict:
    """serving_default(question, context) in a process that imports only tensorflow + tensorflow_text."""
    code = (
        "import json, sys\n"
        "import tensorflow as tf, tensorflow_text  # noqa: F401\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('toolkit', 'apps', 'keras_hub', 'keras_nlp'))\n"
        "assert not bad, bad\n"
        "rows = json.loads(sys.argv[2])\n"
        "fn = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
        "names = sorted(fn.structured_input_signature[1])\n"
        "out = fn(question=tf.constant([r['question'] for r in rows]), context=tf.constant([r['context'] for r in rows]))\n"
        "print('RESULT ' + json.dumps({'inputs': names, 'answer': [a.decode() for a in out['answer'].numpy()],\n"
        "      'start': out['start'].numpy().tolist(), 'end': out['end'].numpy().tolist(),\n"
        "      'score': out['score'].numpy().tolist()}))\n")
    done = harness.run_python(code, path, json.dumps(QUESTIONS), what="TF-only load of the question-answerer export")
    return json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])


def test_train(family):
    cells.check_train(family)
    with open(os.path.join(family.run_dir(), "metrics.json")) as f:
        metrics = json.load(f)
    assert {"exact_match", "f1"} <= set(metrics) and metrics["evaluated_on"] == "validation", metrics
    assert os.path.isfile(os.path.join(family.run_dir(), "vocab.txt"))  # the tokenizer travels with the run


@pytest.mark.parametrize("target", ["cpu", pytest.param("gpu", marks=pytest.mark.slow),
                                    pytest.param("tpu", marks=pytest.mark.slow)])
def test_export(family, target):
    result = cells.check_export(family, target)
    assert result["metadata"]["task"] == "question_answering", result["metadata"].get("task")


def test_evaluate_run_dir_and_export(family):
    from_run, from_export = family.evaluate("run"), family.evaluate("cpu")
    assert from_run["num_examples"] == from_export["num_examples"] == 4
    for metric in ("exact_match", "f1"):
        assert abs(from_run[metric] - from_export[metric]) <= 1e-6, (from_run, from_export)


def test_predict_run_dir_and_export(family):
    from_run, from_export = family.predict("run"), family.predict("cpu")
    cells.assert_same(from_run, from_export, where="predict run dir vs export")
    for row, asked in zip(from_export, QUESTIONS):
        assert asked["context"][row["start"]:row["end"]] == row["answer"] != "", row  # character offsets
        assert row["question"] == asked["question"]


def test_tf_only_load(family):
    result = _tf_only(family.export("cpu")["path"])
    assert result["inputs"] == ["context", "question"], result["inputs"]
    for answer, start, end, asked in zip(result["answer"], result["start"], result["end"], QUESTIONS):
        assert asked["context"][start:end] == answer
    rows = family.predict("cpu")
    assert [r["answer"] for r in rows] == result["answer"] and [r["start"] for r in rows] == result["start"]


@pytest.mark.slow
def test_serve_rest(family):
    family.export("cpu")
    server = cells.Served(family.serve_base, [family.export_name("cpu")])
    try:
        code, body = server.rest_predict(family.export_name("cpu"), QUESTIONS)
        assert code == 200, f"HTTP {code}: {body}\n{server.log()}"
        expected = _tf_only(family.export("cpu")["path"])["answer"]
        assert [p["answer"] for p in body["predictions"]] == expected, body
    finally:
        server.stop()


@pytest.mark.slow
def test_export_formats(family):
    """tflite and onnx of the dense signature (packed ids -> start / end logits), each parity-checked."""
    result = family.export_formats("cpu")
    for fmt in ("tflite", "onnx"):
        assert fmt in result["formats"] and os.path.isfile(os.path.join(result["path"], f"model.{fmt}"))
        assert result["metadata"]["parity_max_abs_diff"][fmt] <= 1e-4, result["metadata"]["parity_max_abs_diff"]
