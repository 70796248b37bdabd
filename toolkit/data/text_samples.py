"""Offline text corpora (see OFFLINE.md): gensim's test data, Debian's WordNet and fortunes, Django's .po files.

Each function raises `FileNotFoundError` naming the package to install when its source is missing, so
tests can skip with that reason.
"""

from __future__ import annotations

import glob
import io
import os
import pickle
import re
import zlib

WORDNET_DIR = "/usr/share/wordnet"
FORTUNES_DIR = "/usr/share/games/fortunes"


def gensim_datapath(name: str) -> str:
    """Path of a file in gensim's test data (`pip install gensim`)."""
    try:
        from gensim.test.utils import datapath
    except ImportError:
        raise FileNotFoundError("gensim is not installed (pip install gensim: its test data holds the corpus)") from None
    path = datapath(name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"gensim test data file {name!r} not found at {path}")
    return path


def polarity():
    """The 200 labelled movie-review sentences (cp1252, label-sorted) -> `(texts, labels)`, labels neg/pos."""
    texts, labels = [], []
    with open(gensim_datapath("pang_lee_polarity.cor"), encoding="cp1252") as f:
        for line in f:
            label, _, text = line.strip().partition(" ")
            if label.startswith("__label__") and text:
                labels.append(label[len("__label__"):])
                texts.append(text)
    return texts, labels


class _Py2Unpickler(pickle.Unpickler):
    """Maps the py2 / old-sklearn names in gensim's newsgroups pickle to their py3 homes."""

    MOVED = {
        ("copy_reg", "_reconstructor"): ("copyreg", "_reconstructor"),
        ("__builtin__", "dict"): ("builtins", "dict"),
        ("__builtin__", "object"): ("builtins", "object"),
        ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("sklearn.datasets.base", "Bunch"): ("sklearn.utils", "Bunch"),
    }

    def find_class(self, module, name):
        module, name = self.MOVED.get((module, name), (module, name))
        return super().find_class(module, name)


def mini_newsgroups(strip_headers: bool = True):
    """gensim's 200-document 20-newsgroups subset (alt.atheism vs sci.space) -> `(texts, labels)`.

    Headers (including `Newsgroups:`, which names the answer) are stripped: the text after the first blank line.
    """
    with open(gensim_datapath("mini_newsgroup"), "rb") as f:
        bunch = _Py2Unpickler(io.BytesIO(zlib.decompress(f.read())), encoding="latin1").load()
    names = list(bunch["target_names"])
    texts = []
    for document in bunch["data"]:
        if strip_headers:
            _, _, document = document.partition("\n\n")
        texts.append(document.strip() or "(empty)")
    return texts, [names[int(t)] for t in bunch["target"]]


def lee_background():
    """gensim's Lee background corpus: 299 news documents (one per line)."""
    with open(gensim_datapath("lee_background.cor"), encoding="utf-8", errors="replace") as f:
        return [line.strip() for line in f if line.strip()]


def questions_words_path() -> str:
    """Mikolov's analogy questions (`: section` headers, then `a b c d` lines)."""
    return gensim_datapath("questions-words.txt")


def wordnet_glosses(limit: int | None = None):
    """Glosses and examples from Debian's `wordnet-base` data files (one string per synset)."""
    files = sorted(glob.glob(os.path.join(WORDNET_DIR, "data.*")))
    if not files:
        raise FileNotFoundError(f"WordNet data not found in {WORDNET_DIR} (apt-get install wordnet-base)")
    glosses = []
    for file in files:
        with open(file, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue  # the licence header
                glosses.append(line.split("|", 1)[1].strip().replace('"', " "))
                if limit and len(glosses) >= limit:
                    return glosses
    return glosses


def fortunes(limit: int | None = None):
    """The fortunes of Debian's `fortunes` package (one string per fortune)."""
    files = sorted(f for f in glob.glob(os.path.join(FORTUNES_DIR, "*"))
                   if os.path.isfile(f) and not f.endswith((".dat", ".u8")))
    if not files:
        raise FileNotFoundError(f"fortunes not found in {FORTUNES_DIR} (apt-get install fortunes)")
    out = []
    for file in files:
        with open(file, encoding="utf-8", errors="replace") as f:
            out.extend(p.strip() for p in f.read().split("\n%\n") if p.strip())
        if limit and len(out) >= limit:
            return out[:limit]
    return out


def tokenize(text: str):
    """Lower-cased word tokens (letters, digits, apostrophes), the word2vec corpora's tokenisation."""
    return re.findall(r"[a-z0-9']+", text.lower())


def django_parallel(language: str = "fr", max_words: int = 12):
    """English -> `language` sentence pairs from the .po catalogs inside the installed Django package.

    Only simple pairs are kept: no format placeholders, no plural forms, no HTML, at most `max_words`
    words a side; duplicates removed. About 800 pairs for French.
    """
    try:
        import django
    except ImportError:
        raise FileNotFoundError("Django is not installed (pip install django: its .po catalogs are the corpus)") from None
    root = os.path.dirname(django.__file__)
    files = sorted(glob.glob(os.path.join(root, "**", "locale", language, "LC_MESSAGES", "*.po"), recursive=True))
    if not files:
        raise FileNotFoundError(f"no {language!r} .po catalogs in {root}")
    pairs, seen = [], set()
    for file in files:
        for source, target in read_po(file):
            if not source or not target or source in seen:
                continue
            if re.search(r"[%{}<>]|\\n|\n", source + target):
                continue
            if len(source.split()) > max_words or len(target.split()) > max_words:
                continue
            seen.add(source)
            pairs.append((source, target))
    return pairs


def read_po(path: str, encoding: str = "utf-8"):
    """`(msgid, msgstr)` pairs of a gettext .po file (plural and fuzzy entries skipped).

    A byte that does not decode with `encoding` is a `DataError` naming the file, line and byte.
    """
    from toolkit.data.text import read_text_file

    entries, current, key, fuzzy = [], {}, None, False

    def flush():
        if "msgid" in current and "msgstr" in current and not fuzzy:
            entries.append((current["msgid"], current["msgstr"]))

    for line in read_text_file(path, encoding).split("\n"):
        line = line.strip()
        if not line:
            flush()
            current, key, fuzzy = {}, None, False
        elif line.startswith("#,") and "fuzzy" in line:
            fuzzy = True
        elif line.startswith("#"):
            continue
        elif line.startswith(("msgid_plural", "msgstr[", "msgctxt")):
            key = None
            current["plural"] = True
        elif line.startswith(("msgid ", "msgstr ")):
            key, _, value = line.partition(" ")
            current[key] = _unquote(value)
        elif line.startswith('"') and key:
            current[key] += _unquote(line)
    flush()
    return [(s, t) for s, t in entries if s]


def _unquote(value: str) -> str:
    value = value.strip()
    if value.startswith('"') and value.endswith('"'):
        value = value[1:-1]
    return value.replace('\\"', '"').replace("\\\\", "\\")
