"""Conformance: text-classifier --model tfidf-mlp (every cell fast), rnn, lstm, gru (train + cpu export +
fresh-process predict / TF-only load fast, the rest slow) on a CSV of real review sentences."""

from tests.conformance import _text

TASK = _text.TASK
_text.define(globals(), ["tfidf-mlp", "rnn", "lstm", "gru"], extra=("rnn", "lstm", "gru"))
