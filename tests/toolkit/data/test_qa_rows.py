"""QA rows: JSONL / CSV / SQuAD JSON / lists -> checked (question, context, answer, answer_start) rows; every bad
row is a DataError naming the file and row."""

import csv
import json

import pytest

from toolkit.data import DataError
from toolkit.data.qa_rows import read_qa_rows

CONTEXT = "The letter was written by Ann in Paris. Ann signed it."


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def test_jsonl_finds_the_answer_offset_or_checks_the_given_one(tmp_path):
    path = _jsonl(tmp_path / "rows.jsonl", [
        {"question": "Who wrote it?", "context": CONTEXT, "answer": "Ann"},
        {"question": "Who signed it?", "context": CONTEXT, "answer": "Ann", "answer_start": 40},  # the 2nd "Ann"
    ])
    first, second = read_qa_rows(path)
    assert (first.answer_start, second.answer_start) == (26, 40)  # no answer_start: the first occurrence
    assert CONTEXT[second.answer_start:second.answer_end] == "Ann"
    assert (first.where, second.where) == ("rows.jsonl line 1", "rows.jsonl line 2")


def test_csv_with_optional_answer_start_and_non_ascii_context(tmp_path):
    path = _csv(tmp_path / "rows.csv", ["question", "context", "answer", "answer_start"], [
        ["Where?", "Le café est à Paris.", "à Paris", ""],
        ["What?", "Le café est à Paris.", "café", "3"],
    ])
    rows = read_qa_rows(path)
    assert [r.answer_start for r in rows] == [12, 3]  # characters, not UTF-8 bytes
    assert rows[0].where == "rows.csv line 2"  # line 1 is the header


def test_squad_json_keeps_every_answer_for_scoring(tmp_path):
    squad = {"data": [{"title": "t", "paragraphs": [{"context": CONTEXT, "qas": [
        {"id": "q1", "question": "Who wrote it?", "answers": [{"text": "Ann", "answer_start": 26},
                                                           {"text": "by Ann", "answer_start": 23}]}]}]}]}
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(squad))
    (row,) = read_qa_rows(str(path))
    assert (row.answer, row.answer_start, row.answers, row.id) == ("Ann", 26, ("Ann", "by Ann"), "q1")


def test_answer_not_in_the_context_names_the_row(tmp_path):
    path = _jsonl(tmp_path / "rows.jsonl", [
        {"question": "Who wrote it?", "context": CONTEXT, "answer": "Ann"},
        {"question": "Where?", "context": CONTEXT, "answer": "in paris"},
    ])
    with pytest.raises(DataError, match=r"rows.jsonl line 2: answer 'in paris' is not in its context .*differs only "
                                        r"in case from 'in Paris' at character 30"):
        read_qa_rows(path)
    with pytest.raises(DataError, match=r"rows.csv line 3: answer 'Rome' is not in its context"):
        read_qa_rows(_csv(tmp_path / "rows.csv", ["question", "context", "answer"],
                          [["Who?", CONTEXT, "Ann"], ["Where?", CONTEXT, "Rome"]]))


def test_answer_start_that_misses_the_answer_names_the_row(tmp_path):
    path = _jsonl(tmp_path / "rows.jsonl", [{"question": "Who?", "context": CONTEXT, "answer": "Ann",
                                             "answer_start": 25}])
    with pytest.raises(DataError, match=r"rows.jsonl line 1: answer_start=25 points at ' An', not at the answer 'Ann'"):
        read_qa_rows(path)
    with pytest.raises(DataError, match=r"rows.csv line 2: answer_start must be a character offset >= 0. "
                                        r"Received: 'x'"):
        read_qa_rows(_csv(tmp_path / "rows.csv", ["question", "context", "answer", "answer_start"],
                          [["Who?", CONTEXT, "Ann", "x"]]))


def test_missing_columns_fields_and_bad_files(tmp_path):
    with pytest.raises(DataError, match=r"rows.csv: missing column\(s\) \['context'\]; the header has "
                                        r"\['question', 'passage', 'answer'\]"):
        read_qa_rows(_csv(tmp_path / "rows.csv", ["question", "passage", "answer"], [["q", "c", "a"]]))
    with pytest.raises(DataError, match=r"rows.jsonl line 2: context must be a non-empty string. Received: ''"):
        read_qa_rows(_jsonl(tmp_path / "rows.jsonl", [{"question": "q", "context": "c", "answer": "c"},
                                                      {"question": "q", "context": "", "answer": "a"}]))
    with pytest.raises(DataError, match=r"line 1: no answer"):
        read_qa_rows(_jsonl(tmp_path / "none.jsonl", [{"question": "q", "context": "c"}]))
    (tmp_path / "broken.jsonl").write_text('{"question": "q"\n')
    with pytest.raises(DataError, match=r"broken.jsonl line 1: not JSON"):
        read_qa_rows(str(tmp_path / "broken.jsonl"))
    with pytest.raises(DataError, match=r"does not exist"):
        read_qa_rows(str(tmp_path / "missing.jsonl"))
    (tmp_path / "rows.txt").write_text("q\tc\ta\n")
    with pytest.raises(DataError, match=r"must be a .jsonl, .csv or SQuAD-style .json file"):
        read_qa_rows(str(tmp_path / "rows.txt"))
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match=r"holds no \(question, context\) rows"):
        read_qa_rows(str(tmp_path / "empty.jsonl"))


def test_squad_2_unanswerable_questions_are_refused(tmp_path):
    path = tmp_path / "v2.json"
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": "c", "qas": [
        {"id": "x7", "question": "q", "answers": [], "is_impossible": True}]}]}]}))
    with pytest.raises(DataError, match=r"v2.json question x7: unanswerable"):
        read_qa_rows(str(path))


def test_prediction_rows_need_no_answer_and_lists_are_rows():
    (row,) = read_qa_rows([{"question": "Who?", "context": "Ann did."}], require_answer=False)
    assert (row.answer, row.answer_start) == ("", -1)
    rows = read_qa_rows([("Who?", "Ann did.", "Ann"), ("Did?", "Ann did.", "did", 4)])
    assert [r.answer_start for r in rows] == [0, 4] and rows[1].where == "row 2"
    with pytest.raises(DataError, match=r"row 1: expected a dict or a \(question, context, answer"):
        read_qa_rows(["just a string"])
