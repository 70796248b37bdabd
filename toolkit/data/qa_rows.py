"""(question, context, answer) rows for extractive question answering, from JSONL, CSV, SQuAD JSON or lists.

A row names a question, the passage (context) that answers it, and the answer copied from the passage. The
answer's character offset in the context (SQuAD's `answer_start`) is optional: without it the first occurrence
of the answer is used. Every problem is a `DataError` naming the file and row (CSV: the line, 1 = header;
JSONL: the line; SQuAD JSON: the question's `id` or its position).

Accepted sources:
- `.jsonl`: one JSON object a line, keys `question`, `context`, `answer`, optional `answer_start` (or SQuAD's
  `answers`: a list of `{"text", "answer_start"}` / strings; the first trains, all count when scoring).
- `.csv`: a header row with the columns `question`, `context`, `answer`, optional `answer_start`.
- `.json`: a SQuAD v1.1 file (`{"data": [{"paragraphs": [{"context", "qas": [...]}]}]}`) or a list of row objects.
- Python: a list of dicts (the keys above) or of `(question, context, answer[, answer_start])` tuples.

Examples:
>>> rows = read_qa_rows([("Who wrote it?", "It was written by Ann.", "Ann")])
>>> rows[0].answer_start, rows[0].context[rows[0].answer_start:rows[0].answer_end]
(18, 'Ann')
>>> read_qa_rows([("Who?", "It was Ann.", "Bob")])
Traceback (most recent call last):
...
toolkit.data.errors.DataError: row 1: answer 'Bob' is not in its context 'It was Ann.'; the answer must be a span copied from the context
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os

from toolkit.data.errors import DataError

COLUMNS = ("question", "context", "answer")
START = "answer_start"
SUFFIXES = (".jsonl", ".json", ".csv")


@dataclasses.dataclass
class QARow:
    """One question: `context[answer_start:answer_end] == answer` (characters) when it has an answer.

    Attributes:
        question, context: the strings.
        answer: the training answer ("" for unlabelled rows read with `require_answer=False`).
        answer_start: its character offset in `context` (-1 without an answer).
        answers: every acceptable answer (SQuAD rows may list several; scoring takes the best match).
        where: how errors name this row (`rows.csv line 3`).
        id: the row's `id` when the source gives one ("" otherwise).
    """

    question: str
    context: str
    answer: str = ""
    answer_start: int = -1
    answers: tuple = ()
    where: str = ""
    id: str = ""

    @property
    def answer_end(self) -> int:
        return self.answer_start + len(self.answer)


def read_qa_rows(source, encoding: str = "utf-8", require_answer: bool = True) -> list:
    """Reads and checks QA rows (see the module docstring for the forms); returns a list of `QARow`.

    Args:
        source: a `.jsonl` / `.csv` / `.json` path, or a list of dicts or tuples.
        encoding: of the file.
        require_answer: False for prediction inputs: rows need only a question and a context (an answer, when
            present, is still checked against the context).

    Raises:
        DataError: a missing file, column or field, an empty question or context, an answer that is not a span
            of its context, or an `answer_start` that does not point at the answer (each names the row).
    """
    raw = list(_raw_rows(source, encoding))
    if not raw:
        raise DataError(f"{_name(source)} holds no (question, context) rows")
    return [_check(values, where, require_answer) for values, where in raw]


def _name(source) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the rows given"


def _raw_rows(source, encoding):
    """Yields `(dict, where)` per row, before any check."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise DataError(f"QA rows file {path!r} does not exist (give a .jsonl, .csv or SQuAD .json file)")
        if not path.lower().endswith(SUFFIXES):
            raise DataError(f"{path!r}: QA rows must be a .jsonl, .csv or SQuAD-style .json file")
        from toolkit.data.text import read_text_file  # a bad byte: DataError naming file, line, byte, --encoding

        text = read_text_file(path, encoding, newline="")
        name = os.path.basename(path)
        if path.lower().endswith(".csv"):
            yield from _csv_rows(text, name)
        elif path.lower().endswith(".jsonl"):
            yield from _jsonl_rows(text, name)
        else:
            yield from _json_rows(text, name)
        return
    if isinstance(source, dict):
        raise DataError("QA rows must be a list of rows (dicts or (question, context, answer) tuples), not one dict")
    for index, row in enumerate(source):
        where = f"row {index + 1}"
        if isinstance(row, dict):
            yield row, where
        elif isinstance(row, (list, tuple)) and 2 <= len(row) <= 4:
            yield dict(zip((*COLUMNS, START), row)), where
        else:
            raise DataError(f"{where}: expected a dict or a (question, context, answer[, answer_start]) tuple. "
                            f"Received: {type(row).__name__}")


def _csv_rows(text, name):
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in ("question", "context") if c not in header]
    if missing:
        raise DataError(f"{name}: missing column(s) {missing}; the header has {header} (needs question, context, "
                        f"answer, optional answer_start)")
    for row in reader:
        yield {k: v for k, v in row.items() if k is not None}, f"{name} line {reader.line_num}"


def _jsonl_rows(text, name):
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{name} line {number}: not JSON ({error.msg} at column {error.colno})") from error
        if not isinstance(row, dict):
            raise DataError(f"{name} line {number}: expected a JSON object with question, context, answer. "
                            f"Received: {type(row).__name__}")
        yield row, f"{name} line {number}"


def _json_rows(text, name):
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{name}: not JSON ({error.msg} at line {error.lineno}, column {error.colno})") from error
    if isinstance(document, list):
        for index, row in enumerate(document):
            if not isinstance(row, dict):
                raise DataError(f"{name} item {index + 1}: expected an object. Received: {type(row).__name__}")
            yield row, f"{name} item {index + 1}"
        return
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise DataError(f"{name}: expected a SQuAD file ({{\"data\": [{{\"paragraphs\": [...]}}]}}) or a list of rows")
    count = 0
    for article in document["data"]:
        for paragraph in article.get("paragraphs", []) if isinstance(article, dict) else []:
            context = paragraph.get("context")
            for qa in paragraph.get("qas", []):
                count += 1
                where = f"{name} question {qa.get('id') or count}"
                if qa.get("is_impossible"):
                    raise DataError(f"{where}: unanswerable (SQuAD 2.0 is_impossible) questions are not supported; "
                                    "extractive QA here always returns a span")
                yield {"question": qa.get("question"), "context": context, "answers": qa.get("answers"),
                       "id": qa.get("id", "")}, where


def _answers_of(values, where):
    """`[(text, start or None), ...]` from `answer` (+ `answer_start`) or SQuAD's `answers` list."""
    answer = values.get("answer")
    if answer not in (None, ""):
        if not isinstance(answer, str):
            raise DataError(f"{where}: answer must be a string. Received: {type(answer).__name__}")
        return [(answer, values.get(START))]
    listed = values.get("answers")
    if listed in (None, "", []):
        return []
    if not isinstance(listed, list):
        raise DataError(f"{where}: answers must be a list. Received: {type(listed).__name__}")
    out = []
    for item in listed:
        if isinstance(item, str):
            out.append((item, None))
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            out.append((item["text"], item.get(START)))
        else:
            raise DataError(f"{where}: each of answers must be a string or {{\"text\", \"answer_start\"}}. "
                            f"Received: {item!r}")
    return out


def _start_of(answer, start, context, where) -> int:
    """The checked character offset of `answer` in `context`."""
    if start in (None, ""):
        found = context.find(answer)
        if found < 0:
            hint = ""
            lower = context.lower().find(answer.lower())
            if lower >= 0:
                hint = f" (it differs only in case from {context[lower:lower + len(answer)]!r} at character {lower})"
            raise DataError(f"{where}: answer {answer!r} is not in its context {_short(context)}{hint}; the answer "
                            f"must be a span copied from the context")
        return found
    try:
        start = int(start)
        if isinstance(start, bool) or start < 0:
            raise ValueError
    except (TypeError, ValueError):
        raise DataError(f"{where}: answer_start must be a character offset >= 0. Received: {start!r}") from None
    if context[start:start + len(answer)] != answer:
        raise DataError(f"{where}: answer_start={start} points at {context[start:start + len(answer)]!r}, not at the "
                        f"answer {answer!r} (answer_start counts characters from 0; leave it empty to search)")
    return start


def _short(text: str, limit: int = 60) -> str:
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def _check(values, where, require_answer) -> QARow:
    fields = {}
    for key in ("question", "context"):
        value = values.get(key)
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{where}: {key} must be a non-empty string. Received: {value!r}")
        fields[key] = value
    answers = [(text, start) for text, start in _answers_of(values, where)]
    if not answers:
        if require_answer:
            raise DataError(f"{where}: no answer (give an answer field / column: the span of the context that "
                            f"answers the question)")
        return QARow(fields["question"], fields["context"], where=where, id=str(values.get("id") or ""))
    starts = [_start_of(text, start, fields["context"], where) for text, start in answers]
    return QARow(fields["question"], fields["context"], answers[0][0], starts[0], tuple(t for t, _ in answers),
                 where, str(values.get("id") or ""))
