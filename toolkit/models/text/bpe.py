"""Byte pair encoding: learn merges from a corpus, apply them, and run them in a TF graph (SEED_CATALOGUE section 6).

Training (Sennrich et al. 2016, F3:10885-10941): every word starts as its characters plus an end-of-word
symbol `</w>`; repeat k times: count adjacent symbol pairs over the corpus (weighted by word frequency), merge the
most frequent pair everywhere. Inference applies the learned merges in the order they were learned.

Ties: when two pairs have the same count, the pair seen first (scanning the words in corpus order, each word's
pairs left to right) wins. That is what Sennrich's reference `max(stats, key=stats.get)` does on an
insertion-ordered dict, it does not depend on how symbols sort, and it reproduces the notes: on
"low low low lower lower lowest" the third merge is (low, </w>), count 3, although (low, e) also has count 3
("low" comes before "lower" in the corpus).

The three subword markings of the same word, as the notes contrast them (F3:10943-10963):

- BPE (here): the *end* of a word is marked, `</w>` on its last piece: "lowest" -> `low`, `est</w>`.
- WordPiece (BERT): *continuations* are marked with a `##` prefix: `low`, `##est` (keras-hub
  `WordPieceTokenizer`; greedy longest-match-first over a vocabulary, merges chosen by likelihood when trained).
- SentencePiece (T5, ALBERT): the *start* of a word carries `▁` (U+2581, the space made visible):
  `▁low`, `est`; no pre-tokenisation, whitespace is an ordinary symbol.

Words come from GPT-2's pre-tokeniser (letter runs, number runs, punctuation runs, English contractions) over
byte-level characters (each UTF-8 byte mapped to one printable character, as GPT-2 / CLIP do), so that
`BPE.to_keras_hub()` -- a keras-hub `CLIPTokenizer` (the keras-hub byte-pair tokenizer that takes a learned
vocabulary and merges with a `</w>` end-of-word symbol) -- gives the same ids inside a `tf.function` or an exported
SavedModel as `BPE.encode` does in Python.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools

END = "</w>"
SPECIALS = ("<|endoftext|>", "<|startoftext|>")  # what keras-hub's CLIPTokenizer requires in the vocabulary
_PRETOKENIZE = r"""'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+"""  # GPT-2's pattern, spaces stripped


@functools.lru_cache(maxsize=1)
def byte_to_unicode() -> dict:
    """GPT-2's reversible byte -> printable character table (ASCII letters and digits map to themselves)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = printable[:], 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def pretokenize(text: str) -> list:
    """Words as the exported tokenizer splits them, each as byte-level characters.

    Examples:
    >>> pretokenize("low, lower! Don't")
    ['low', ',', 'lower', '!', 'Don', "'t"]
    """
    import regex  # \\p{L} classes, as GPT-2's tokenizer and keras-hub's split use

    table = byte_to_unicode()
    return ["".join(table[b] for b in word.encode("utf-8")) for word in regex.findall(_PRETOKENIZE, text)]


def _merge_word(symbols: tuple, pair: tuple) -> tuple:
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


@dataclasses.dataclass
class BPE:
    """Learned merges (in order), their corpus counts, and the vocabulary (token -> id).

    Examples:
    >>> bpe = learn_bpe("low low low lower lower lowest", num_merges=3)
    >>> bpe.merges, bpe.counts
    ([('l', 'o'), ('lo', 'w'), ('low', '</w>')], [6, 6, 3])
    >>> bpe.tokenize("lowest low")
    ['low', 'e', 's', 't', '</w>', 'low</w>']
    """

    merges: list
    counts: list
    vocabulary: dict

    def tokenize_word(self, word: str) -> list:
        """One pre-tokenised word -> its pieces, merges applied in learned order."""
        symbols = tuple(word) + (END,)
        for pair in self.merges:
            if len(symbols) == 1:
                break
            symbols = _merge_word(symbols, pair)
        return list(symbols)

    def tokenize(self, text: str) -> list:
        return [piece for word in pretokenize(text) for piece in self.tokenize_word(word)]

    def encode(self, text: str) -> list:
        """Token ids (pure Python); a piece outside the vocabulary raises, naming it."""
        pieces = self.tokenize(text)
        missing = [p for p in pieces if p not in self.vocabulary]
        if missing:
            raise ValueError(f"pieces {missing[:5]} of {text!r} are not in the BPE vocabulary (characters unseen "
                             "in training)")
        return [self.vocabulary[p] for p in pieces]

    def to_keras_hub(self, sequence_length: int | None = None):
        """A keras-hub tokenizer with this vocabulary and these merges that runs in a TF graph (see module doc)."""
        return _end_of_word_tokenizer_class()(vocabulary=dict(self.vocabulary),
                                          merges=[f"{a} {b}" for a, b in self.merges],
                                          sequence_length=sequence_length)


def learn_bpe(corpus, num_merges: int) -> BPE:
    """Learns up to `num_merges` merges from `corpus` (a string or an iterable of strings).

    Stops early when no adjacent pair is left (every word is one symbol). Ties break to the pair seen first
    (module docstring).

    Examples:
    >>> learn_bpe("aaa", 5).merges   # a a a </w> -> aa a </w> -> aaa </w> -> aaa</w>, then nothing is left
    [('a', 'a'), ('aa', 'a'), ('aaa', '</w>')]
    """
    texts = [corpus] if isinstance(corpus, str) else list(corpus)
    frequency = collections.Counter(w for text in texts for w in pretokenize(text))  # insertion = first seen
    if not frequency:
        raise ValueError("learn_bpe: the corpus has no words")
    if num_merges < 0:
        raise ValueError(f"num_merges must be >= 0. Received: num_merges={num_merges}")
    words = {w: tuple(w) + (END,) for w in frequency}
    alphabet = sorted({c for w in frequency for c in w})
    merges, counts = [], []
    for _ in range(num_merges):
        stats = collections.Counter()
        for word, symbols in words.items():
            for pair in itertools.pairwise(symbols):
                stats[pair] += frequency[word]
        if not stats:
            break
        best = max(stats, key=stats.get)  # the first pair inserted among the maxima: first seen
        merges.append(best)
        counts.append(stats[best])
        words = {w: _merge_word(s, best) for w, s in words.items()}
    tokens = [*SPECIALS, END, *alphabet]
    for a, b in merges:
        if a + b not in tokens:
            tokens.append(a + b)
    return BPE(merges, counts, {t: i for i, t in enumerate(tokens)})


@functools.lru_cache(maxsize=1)
def _end_of_word_tokenizer_class():
    import keras
    import keras_hub
    import tensorflow as tf

    @keras.saving.register_keras_serializable(package="toolkit")
    class EndOfWordBytePairTokenizer(keras_hub.tokenizers.CLIPTokenizer):
        """keras-hub's CLIP byte-pair tokenizer with `</w>` as a *separate* end-of-word symbol.

        CLIP (and Hugging Face's `end_of_word_suffix`) glue `</w>` to a word's last character from the start
        (`w</w>`); the notes' BPE (and Sennrich's) starts with `</w>` as its own symbol, so (low, </w>) is a merge.
        The only change is that one line of the graph's word splitting; everything else (the GPT-2 split, byte
        mapping, rank-ordered merging in a `tf.while_loop`, the cache, lookup tables, assets) is keras-hub's. The
        TF path is used in eager mode too (`_allow_python_workflow=False`), so eager and graph agree.
        """

        def __init__(self, vocabulary=None, merges=None, **kwargs):
            kwargs["_allow_python_workflow"] = False
            super().__init__(vocabulary=vocabulary, merges=merges, **kwargs)

        def _bpe_merge_and_update_cache_tf(self, tokens):
            chars = self.byte2unicode.lookup(tf.strings.bytes_split(tokens))
            words = tf.strings.join([tf.strings.reduce_join(chars, axis=1, separator=" "), " " + END])
            merged = self._bpe_merge_tf(tf.strings.split(words, sep=" "))
            self.cache.insert(tokens, tf.strings.reduce_join(merged, axis=1, separator=" "))

    return EndOfWordBytePairTokenizer


def __getattr__(name):  # PEP 562: the keras-hub class is built on first use (this module stays TF-free)
    if name == "EndOfWordBytePairTokenizer":
        return _end_of_word_tokenizer_class()
    raise AttributeError(name)
