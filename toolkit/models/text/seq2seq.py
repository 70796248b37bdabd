"""Seq2seq translation: a bidirectional-GRU encoder, a GRU decoder with Bahdanau (additive) attention,
teacher-forced training, greedy and beam-search decoding (SEED_CATALOGUE section 6).

Attention placement: the decoder's GRU state s_t queries the encoder states, e = v^T tanh(W_s s_t + W_h h),
and the output is softmax(W_o tanh(W_c [s_t; c_t])) (the ordering of TensorFlow's NMT tutorial: teacher
forcing then runs the GRU over the whole target in one call; Bahdanau's original feeds c_t into the next
step instead). Padding (id 0) is masked in attention (-1e9 scores) and ignored in the loss.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from toolkit.layers.bahdanau import BahdanauAttention
from toolkit.models.text.vectorize import build_vectorizer

# TextVectorization's "lower_and_strip_punctuation" regex (keras/src/layers/preprocessing/text_vectorization.py).
STRIP_PUNCTUATION = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
BOS, EOS = "sentencestart", "sentenceend"  # letters only: they survive TextVectorization's standardisation


def _vocabulary(preprocessor):
    return preprocessor.get_layer("text_vectorization").get_vocabulary()


class Seq2SeqTranslator:
    """What every translator here shares: the source / target vectorizers (the target wrapped in BOS ... EOS),
    teacher-forced `fit`, greedy and beam-search `translate`. Subclasses build `self.model` (`[source_ids,
    target_ids] -> next-token logits`) and the decoding hooks `_encode`, `_greedy`, `_start_state`,
    `_beam_step`."""

    def _vectorize(self, sources, targets, max_tokens, max_length):
        self.max_length = max_length
        self.sources, self.targets = list(sources), list(targets)
        self.source_vectorizer = build_vectorizer(self.sources, mode="int", max_tokens=max_tokens,
                                                  sequence_length=max_length, name="source")
        self.target_vectorizer = build_vectorizer([f"{BOS} {t} {EOS}" for t in self.targets], mode="int",
                                                  max_tokens=max_tokens, sequence_length=max_length + 2, name="target")
        self.target_words = np.array(_vocabulary(self.target_vectorizer))
        self.bos, self.eos = int(np.flatnonzero(self.target_words == BOS)[0]), int(np.flatnonzero(self.target_words == EOS)[0])
        return len(_vocabulary(self.source_vectorizer)), len(self.target_words)

    @staticmethod
    def normalize(sentences):
        """The target side as the model sees it (lower case, punctuation stripped): BLEU references."""
        lowered = tf.strings.lower(tf.constant(list(sentences)))
        stripped = tf.strings.regex_replace(lowered, STRIP_PUNCTUATION, "").numpy()
        return [" ".join(s.decode("utf-8").split()) for s in stripped]

    def _arrays(self, sources, targets):
        src = self.source_vectorizer(tf.constant(list(sources))).numpy()
        tgt = self.target_vectorizer(tf.constant([f"{BOS} {t} {EOS}" for t in targets])).numpy()
        return src, tgt[:, :-1], tgt[:, 1:]

    def fit(self, epochs: int = 30, batch_size: int = 32, learning_rate: float = 2e-3, validation=None,
            verbose: int = 0):
        """Teacher-forced training (next-token cross-entropy, padding ignored). Returns the history dict."""
        src, tgt_in, tgt_out = self._arrays(self.sources, self.targets)
        self.model.compile(
            optimizer=keras.optimizers.Adam(learning_rate, clipnorm=5.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
        )
        val = None
        if validation is not None:
            v_src, v_in, v_out = self._arrays(*validation)
            val = ((v_src, v_in), v_out)
        history = self.model.fit((src, tgt_in), tgt_out, epochs=epochs, batch_size=batch_size, shuffle=True,
                                 validation_data=val, verbose=verbose)
        return history.history

    def _words(self, ids):
        words = []
        for i in ids:
            if i == self.eos:
                break
            if i > 1:  # 0 padding, 1 OOV
                words.append(str(self.target_words[i]))
        return " ".join(words)

    def translate(self, sentences, beam_width: int = 1, max_length: int | None = None, length_penalty: float = 1.0):
        """Translations of `sentences`: greedy (`beam_width=1`) or beam search (log-prob / length^penalty)."""
        if beam_width > 1:
            return self.beam_search(sentences, beam_width, max_length, length_penalty)
        max_length = max_length or self.max_length + 2
        src = self.source_vectorizer(tf.constant(list(sentences))).numpy()
        return self._greedy(src, self._encode(src), max_length)

    def beam_search(self, sentences, beam_width: int = 4, max_length: int | None = None,
                    length_penalty: float = 1.0):
        """Beam search of every sentence (`translate(beam_width>1)` calls it; width 1 is greedy search)."""
        if beam_width < 1:
            raise ValueError(f"beam_width must be >= 1. Received: beam_width={beam_width}")
        max_length = max_length or self.max_length + 2
        src = self.source_vectorizer(tf.constant(list(sentences))).numpy()
        memory = self._encode(src)
        return [self._beam(src[i:i + 1], [m[i:i + 1] for m in memory], beam_width, max_length, length_penalty)
                for i in range(len(src))]

    def _beam(self, src, memory, width, max_length, length_penalty):
        beams = [([], 0.0, self._start_state(memory))]  # (ids, log-prob, decoder state)
        finished = []
        for _ in range(max_length):
            logp, states = self._beam_step(beams, src, memory)
            logp[:, :2] = -np.inf  # never emit padding or OOV
            candidates = []
            for b, (ids, score, _) in enumerate(beams):
                for token in np.argsort(-logp[b])[:width]:
                    candidates.append((ids + [int(token)], score + float(logp[b, token]), states[b]))
            candidates.sort(key=lambda c: -c[1])
            beams = []
            for cand in candidates:
                if cand[0][-1] == self.eos:
                    finished.append(cand)
                else:
                    beams.append(cand)
                if len(beams) == width:
                    break
            if not beams or len(finished) >= width:
                break
        pool = finished or beams
        best = max(pool, key=lambda c: c[1] / max(len(c[0]), 1) ** length_penalty)
        return self._words(best[0])


class Translator(Seq2SeqTranslator):
    """Trains and runs an attention encoder-decoder on sentence pairs.

    Args:
        sources, targets: training sentences (lists of strings).
        units: GRU size (encoder per direction and decoder); embedding_dim: token embedding size.
        max_tokens: vocabulary caps; max_length: tokens per sentence (longer ones are truncated).

    Examples:
    >>> t = Translator(["add user", "delete user"], ["ajouter utilisateur", "supprimer utilisateur"],
    ...                units=4, embedding_dim=4, max_length=4)
    >>> tuple(t.model.output.shape)   # next-token logits over the target vocabulary
    (None, None, 7)
    >>> translations = t.translate(["add user", "delete user"])   # untrained: any target words
    >>> len(translations), all(w in t.target_words for s in translations for w in s.split())
    (2, True)

    Training (`t.fit(epochs=30)`, teacher-forced) is left out here: tracing the GRU training step alone
    takes several seconds.
    """

    def __init__(self, sources, targets, units: int = 128, embedding_dim: int = 64, max_tokens: int = 5000,
                 max_length: int = 16, attention_units: int | None = None, seed: int = 0):
        keras.utils.set_random_seed(seed)
        source_size, target_size = self._vectorize(sources, targets, max_tokens, max_length)

        # Layers shared by the training model and the step-wise inference models.
        self.source_embedding = keras.layers.Embedding(source_size, embedding_dim, mask_zero=True, name="src_embed")
        self.encoder_rnn = keras.layers.Bidirectional(
            keras.layers.GRU(units, return_sequences=True, return_state=True), name="encoder")
        self.bridge = keras.layers.Dense(units, activation="tanh", name="bridge")
        self.target_embedding = keras.layers.Embedding(target_size, embedding_dim, mask_zero=True, name="tgt_embed")
        self.decoder_rnn = keras.layers.GRU(units, return_sequences=True, return_state=True, name="decoder")
        self.attention = BahdanauAttention(attention_units or units, name="attention")
        self.combine = keras.layers.Dense(units, activation="tanh", use_bias=False, name="W_c")
        self.project = keras.layers.Dense(target_size, name="W_o")

        source_ids = keras.Input((None,), dtype="int64", name="source_ids")
        target_in = keras.Input((None,), dtype="int64", name="target_ids")
        encoded, state = self._encode_graph(source_ids)
        logits, _ = self._decode(target_in, state, encoded, source_ids)
        self.model = keras.Model([source_ids, target_in], logits, name="seq2seq")
        self.encoder = keras.Model(source_ids, [encoded, state], name="seq2seq_encoder")
        step_ids = keras.Input((1,), dtype="int64", name="previous_ids")
        step_state = keras.Input((units,), name="state")
        step_encoded = keras.Input((None, 2 * units), name="encoded")
        step_source = keras.Input((None,), dtype="int64", name="source_ids_for_mask")
        step_logits, new_state = self._decode(step_ids, step_state, step_encoded, step_source)
        self.decoder_step = keras.Model([step_ids, step_state, step_encoded, step_source],
                                        [step_logits[:, -1], new_state], name="seq2seq_step")

    def _encode_graph(self, source_ids):
        outputs, forward, backward = self.encoder_rnn(self.source_embedding(source_ids))
        return outputs, self.bridge(keras.ops.concatenate([forward, backward], axis=-1))

    def _decode(self, target_ids, state, encoded, source_ids):
        states, new_state = self.decoder_rnn(self.target_embedding(target_ids), initial_state=state)
        context, _ = self.attention(states, encoded, values_mask=keras.ops.not_equal(source_ids, 0))
        hidden = self.combine(keras.ops.concatenate([states, context], axis=-1))
        return self.project(hidden), new_state

    def _encode(self, src):
        encoded, state = self.encoder(src, training=False)
        return encoded.numpy(), state.numpy()

    def _step(self, previous, state, encoded, src):
        tensors = [tf.constant(previous, tf.int64), tf.constant(state, tf.float32), tf.constant(encoded, tf.float32),
                   tf.constant(src, tf.int64)]
        if not hasattr(self, "_step_fn"):  # one traced graph instead of an eager Keras call per decoding step
            self._step_fn = tf.function(lambda t: self.decoder_step(t, training=False), reduce_retracing=True)
        return self._step_fn(tensors)

    def _greedy(self, src, memory, max_length):
        encoded, state = memory
        previous = np.full((len(src), 1), self.bos, dtype="int64")
        out, done = [], np.zeros(len(src), bool)
        for _ in range(max_length):
            logits, state = self._step(previous, state, encoded, src)
            logits = logits.numpy()
            logits[:, :2] = -np.inf  # never emit padding or OOV
            nxt = logits.argmax(axis=-1)
            out.append(nxt)
            done |= nxt == self.eos
            if done.all():
                break
            previous = nxt[:, None].astype("int64")
        ids = np.stack(out, axis=1)
        return [self._words(row) for row in ids]

    def _start_state(self, memory):
        return memory[1][0]

    def _beam_step(self, beams, src, memory):
        k = len(beams)
        previous = np.array([[b[0][-1] if b[0] else self.bos] for b in beams], dtype="int64")
        logits, states = self._step(previous, np.stack([b[2] for b in beams]), np.repeat(memory[0], k, 0),
                                    np.repeat(src, k, 0))
        return tf.nn.log_softmax(logits).numpy(), states.numpy()


TRANSLATOR_MODELS = ("gru", "transformer")


def build_translator(sources, targets, model: str = "gru", **options) -> Seq2SeqTranslator:
    """A translator by name: `gru` (`Translator`: biGRU + Bahdanau attention) or `transformer`
    (`toolkit.models.text.transformer_seq2seq.TransformerTranslator`); `options` go to its constructor.

    Examples:
    >>> t = build_translator(["add user"], ["ajouter utilisateur"], model="transformer", num_layers=1,
    ...                      hidden_dim=8, num_heads=2, max_length=3)
    >>> type(t).__name__
    'TransformerTranslator'
    >>> build_translator(["a"], ["b"], model="lstm")
    Traceback (most recent call last):
    ...
    ValueError: model must be one of ('gru', 'transformer'). Received: model='lstm'
    """
    if model not in TRANSLATOR_MODELS:
        raise ValueError(f"model must be one of {TRANSLATOR_MODELS}. Received: model={model!r}")
    if model == "transformer":
        from toolkit.models.text.transformer_seq2seq import TransformerTranslator  # it builds on this module

        return TransformerTranslator(sources, targets, **options)
    return Translator(sources, targets, **options)
