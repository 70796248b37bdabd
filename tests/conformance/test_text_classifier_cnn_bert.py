"""Conformance: text-classifier --model bert (every cell fast: a tiny local preset), cnn, tcn, transformer
(train + cpu export + fresh-process predict / TF-only load fast, the rest slow)."""

from tests.conformance import _text

TASK = _text.TASK
_text.define(globals(), ["bert", "cnn", "tcn", "transformer"], extra=("cnn", "tcn", "transformer"))
