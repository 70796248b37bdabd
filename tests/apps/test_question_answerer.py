"""The question-answerer app without training: predict-input forms, option checks, data errors that name the row
(through the Python API and the CLI). Training, export, evaluate and predict in new processes are the conformance
cells (tests/conformance/test_question_answerer.py)."""

import json

import pytest

from apps import cli, question_answerer
from toolkit.data import DataError

CONTEXT = "The letter was written by Ann in Paris."


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from tests.conformance.data import bert_preset

    return bert_preset(str(tmp_path_factory.mktemp("qa_bert")), [CONTEXT, "who wrote the letter ?"])


def test_predict_inputs_in_every_form(tmp_path):
    app = question_answerer.APP
    rows = tmp_path / "ask.jsonl"
    rows.write_text(json.dumps({"question": "Who?", "context": CONTEXT}) + "\n")
    items = app.input_items([("Who?", CONTEXT), {"question": "Where?", "context": CONTEXT},
                             json.dumps({"question": "Whose?", "context": CONTEXT}), str(rows)])
    assert [i["question"] for i in items] == ["Who?", "Where?", "Whose?", "Who?"]
    assert items[-1]["where"] == "ask.jsonl line 1"  # results name the file row
    assert app.input_items(("Who?", CONTEXT)) == [{"question": "Who?", "context": CONTEXT}]  # one pair
    columnar = app.raw_inputs({"question": ["a?", "b?"], "context": ["x", "y"]}, {})
    assert columnar == {"question": ["a?", "b?"], "context": ["x", "y"]}
    with pytest.raises(DataError, match=r"input 1 \('just a question'\): give a .jsonl / .csv / .json file"):
        app.raw_inputs(["just a question"], {})
    with pytest.raises(DataError, match=r"context must be a non-empty string"):
        app.raw_inputs([{"question": "Who?"}], {})


def test_option_checks():
    with pytest.raises(ValueError, match=r"max_answer_length must be >= 1. Received: max_answer_length=0"):
        question_answerer.APP.make_config(max_answer_length=0)
    with pytest.raises(ValueError, match=r"sequence_length must be >= 8"):
        question_answerer.APP.make_config(sequence_length=4)


def test_an_answer_cut_off_by_sequence_length_names_the_row(tmp_path, checkpoint):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in [
        {"question": "Who?", "context": "Ann wrote it.", "answer": "Ann"},
        {"question": "Where?", "context": CONTEXT, "answer": "Paris"},
    ]))
    with pytest.raises(ValueError, match=r"rows.jsonl line 2: answer 'Paris' falls beyond sequence_length=8"):
        question_answerer.train(str(rows), checkpoint=checkpoint, sequence_length=8, validation_split=0.0,
                                run_dir=str(tmp_path / "runs"), verbose=0, tensorboard=False)


def test_cli_reports_a_bad_row_without_a_traceback(tmp_path, checkpoint, capsys):
    rows = tmp_path / "rows.csv"
    rows.write_text(f"question,context,answer\nWho?,\"{CONTEXT}\",Ann\nWhere?,\"{CONTEXT}\",Rome\n")
    code = cli.main(["question-answerer", "train", "--data", str(rows), "--checkpoint", checkpoint,
                     "--run-dir", str(tmp_path / "runs"), "--no-tensorboard"])
    err = capsys.readouterr().err
    assert code == 2 and "rows.csv line 3: answer 'Rome' is not in its context" in err, err
    assert "Traceback" not in err


def test_help_names_the_data_forms_and_hides_unused_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["question-answerer", "train", "--help"])
    text = capsys.readouterr().out
    assert "--max-answer-length" in text and "--warmup-fraction" in text and "--lr-schedule" not in text
    assert "answer_start" in question_answerer.APP.description and ".jsonl" in question_answerer.APP.description
