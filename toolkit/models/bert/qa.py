"""BERT extractive question answering (F3:14328-14349): `[CLS] q [SEP] ctx [SEP]`, start and end heads.

Two linear heads (one `Dense(2)` over the token vectors) give start and end logits; the answer is the span
(i, j) of context tokens with i <= j, j - i < `max_answer_length`, maximising start_i + end_j. Answers come
back as text plus character offsets into the context, which needs every token's character span:
keras-hub's `BertTokenizer` returns ids only, so `QAPacker` runs the same steps with offsets, from the
same tensorflow-text ops (`regex_split_with_offsets` with keras-hub's split patterns, then
`FastWordpieceTokenizer.tokenize_with_offsets` on each normalised word) and checks itself against the
keras-hub tokenizer in the tests. Everything is graph ops, so the raw-string SavedModel (`qa_adapter`)
tokenises, decodes the span and slices the answer out of the context inside the graph.

    packer = QAPacker(tokenizer, sequence_length=384)
    model = build_question_answerer(backbone)
    fit_question_answerer(model, packer, questions, contexts, answers, epochs=2)
    answer_questions(model, packer, ["Who wrote it?"], ["It was written by Ann."])   # [{"answer": "Ann", ...}]
"""

from __future__ import annotations

import collections
import re
import string

import keras
import numpy as np
import tensorflow as tf

from toolkit.models.bert.data import FEATURES
from toolkit.models.bert.models import bert_inputs

NEG = -1e9


class QAPacker:
    """(question, context) strings -> packed BERT ids + each token's byte span in the context, in graph ops.

    The question is kept whole where it fits (keras-hub's `MultiSegmentPacker` with `"waterfall"`
    truncation) and the context is cut to the rest of `sequence_length`. Offsets are UTF-8 byte offsets
    into the context, -1 for [CLS], question tokens, [SEP] and padding.

    Args:
        tokenizer: a keras-hub `BertTokenizer` (its vocabulary, lowercase and accent settings are used).
        sequence_length: packed length (question + context + 3 special tokens).

    Examples:
    >>> from toolkit.models.bert import tiny_bert
    >>> _, tokenizer = tiny_bert(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "who", "ann", "?", "is", "here"], hidden_dim=8)
    >>> features, starts, ends = QAPacker(tokenizer, 10).pack(tf.constant(["Who?"]), tf.constant(["Ann is here"]))
    >>> features["token_ids"].numpy().tolist(), starts.numpy().tolist(), ends.numpy().tolist()
    ([[2, 5, 7, 3, 6, 8, 9, 3, 0, 0]], [[-1, -1, -1, -1, 0, 4, 7, -1, -1, -1]], [[-1, -1, -1, -1, 3, 6, 11, -1, -1, -1]])
    """

    def __init__(self, tokenizer, sequence_length: int = 384):
        import keras_hub
        import tensorflow_text as tf_text
        from keras_hub.src.tokenizers import word_piece_tokenizer as wp

        if int(sequence_length) < 4:
            raise ValueError(f"sequence_length must be >= 4 ([CLS] q [SEP] c [SEP]). Received: {sequence_length}")
        self.tokenizer, self.sequence_length = tokenizer, int(sequence_length)
        cjk = getattr(tokenizer, "split_on_cjk", True)
        self._split = wp.WHITESPACE_PUNCTUATION_AND_CJK_REGEX if cjk else wp.WHITESPACE_AND_PUNCTUATION_REGEX
        self._keep = wp.PUNCTUATION_AND_CJK_REGEX if cjk else wp.PUNCTUATION_REGEX
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=list(tokenizer.get_vocabulary()), token_out_type=tf.int32,
            suffix_indicator=tokenizer.suffix_indicator, unknown_token=tokenizer.oov_token, no_pretokenization=True)
        ids = dict(cls=tokenizer.cls_token_id, sep=tokenizer.sep_token_id, pad=tokenizer.pad_token_id)
        self.pad_token_id = int(ids["pad"])
        self._ids = keras_hub.layers.MultiSegmentPacker(self.sequence_length, start_value=ids["cls"],
                                                        end_value=ids["sep"], pad_value=ids["pad"],
                                                        truncate="waterfall")
        self._offsets = keras_hub.layers.MultiSegmentPacker(self.sequence_length, start_value=-1, end_value=-1,
                                                            pad_value=-1, truncate="waterfall")

    def tokenize_with_offsets(self, texts):
        """tf.string `[B]` -> ragged `(ids, starts, ends)` `[B, tokens]`, byte offsets into each text."""
        import tensorflow_text as tf_text

        words, word_starts, word_ends = tf_text.regex_split_with_offsets(texts, self._split, self._keep)
        normal = words
        if getattr(self.tokenizer, "strip_accents", False):
            normal = tf.strings.regex_replace(tf_text.normalize_utf8(normal, "NFD"), r"\p{Mn}", "")
        if self.tokenizer.lowercase:
            normal = tf_text.case_fold_utf8(normal)
        ids, piece_starts, piece_ends = self._wordpiece.tokenize_with_offsets(normal)  # [B, words, pieces]
        # where normalisation changed a word's byte length, piece offsets no longer index the raw word:
        # those pieces get the whole word's span (rare: accents with strip_accents, some case folds)
        same = (tf.equal(tf.strings.length(normal), tf.strings.length(words))  # bytes and characters
                & tf.equal(tf.strings.length(normal, "UTF8_CHAR"), tf.strings.length(words, "UTF8_CHAR"))).flat_values
        word = piece_starts.values.value_rowids()  # which word (flat index) each piece belongs to
        word_start = tf.gather(tf.cast(word_starts.flat_values, tf.int32), word)
        word_end = tf.gather(tf.cast(word_ends.flat_values, tf.int32), word)
        keep = tf.gather(same, word)
        starts = tf.where(keep, word_start + tf.cast(piece_starts.flat_values, tf.int32), word_start)
        ends = tf.where(keep, word_start + tf.cast(piece_ends.flat_values, tf.int32), word_end)
        merged = ids.merge_dims(-2, -1)
        return merged, merged.with_flat_values(starts), merged.with_flat_values(ends)

    def pack(self, questions, contexts):
        """`(features, starts, ends)`: int32 `[B, sequence_length]` ids/segments/mask and context byte spans."""
        questions, contexts = tf.convert_to_tensor(questions), tf.convert_to_tensor(contexts)
        q_ids, _, _ = self.tokenize_with_offsets(questions)
        c_ids, c_starts, c_ends = self.tokenize_with_offsets(contexts)
        token_ids, segment_ids = self._ids((q_ids, c_ids))
        no_offset = tf.ragged.map_flat_values(lambda v: tf.fill(tf.shape(v), -1), q_ids)
        starts, _ = self._offsets((no_offset, c_starts))
        ends, _ = self._offsets((no_offset, c_ends))
        token_ids = tf.cast(token_ids, tf.int32)
        features = {"token_ids": token_ids, "segment_ids": tf.cast(segment_ids, tf.int32),
                    "padding_mask": tf.cast(token_ids != self.pad_token_id, tf.int32)}
        return features, tf.cast(starts, tf.int32), tf.cast(ends, tf.int32)



def build_question_answerer(backbone, dropout: float = 0.1, name: str = "bert_question_answerer") -> keras.Model:
    """BERT + two linear heads: `{"start_logits", "end_logits"}`, float32 `[B, T]` (padding at -1e9).

    Examples:
    >>> from toolkit.models.bert import tiny_bert
    >>> backbone, tokenizer = tiny_bert(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "who", "ann"], hidden_dim=8)
    >>> features, _, _ = QAPacker(tokenizer, 8).pack(tf.constant(["who"]), tf.constant(["ann"]))
    >>> outputs = build_question_answerer(backbone)(features)
    >>> outputs["start_logits"].shape, float(outputs["end_logits"][0, -1]) < -1e8   # padding never wins
    (TensorShape([1, 8]), True)
    """
    inputs = bert_inputs()
    pooler = next((layer for layer in backbone.layers if layer.name == "pooled_dense"), None)
    if pooler is not None:  # the [CLS] pooler feeds nothing here: no gradient, no "gradients do not exist" warning
        pooler.trainable = False
    sequence = backbone(inputs)["sequence_output"]
    sequence = keras.layers.Dropout(dropout, name="head_dropout")(sequence)
    logits = keras.layers.Dense(2, dtype="float32", name="span_logits")(sequence)  # start and end heads
    mask = keras.ops.cast(inputs["padding_mask"], "bool")
    start = keras.ops.where(mask, logits[..., 0], NEG)
    end = keras.ops.where(mask, logits[..., 1], NEG)
    return keras.Model(inputs, {"start_logits": start, "end_logits": end}, name=name)


def decode_spans(start_logits, end_logits, valid, max_answer_length: int = 30):
    """Best span per row: argmax of start_i + end_j over valid i <= j with j - i < `max_answer_length`.

    Args:
        start_logits, end_logits: float `[B, T]`.
        valid: bool `[B, T]`, the context tokens (spans may only start and end there).
        max_answer_length: tokens an answer may span (>= 1).

    Returns:
        `(start, end, score)`: int32 token indices `[B]` (end inclusive) and float32 `start + end` logits.

    Examples:
    >>> s = tf.constant([[0.0, 5.0, -2.0, -1.0, 9.0]]); e = tf.constant([[0.0, 0.0, 4.0, 9.0, 0.0]])
    >>> valid = tf.constant([[False, True, True, True, False]])   # index 4 is not context: 9.0 is ignored
    >>> [t.numpy().tolist() for t in decode_spans(s, e, valid, max_answer_length=2)]   # (1, 3) scores 14 but spans 3 tokens
    [[1], [2], [9.0]]
    """
    if int(max_answer_length) < 1:
        raise ValueError(f"max_answer_length must be >= 1. Received: {max_answer_length}")
    start_logits = tf.cast(start_logits, tf.float32)
    end_logits = tf.cast(end_logits, tf.float32)
    valid = tf.cast(valid, tf.bool)
    length = tf.shape(start_logits)[1]
    scores = start_logits[:, :, None] + end_logits[:, None, :]  # [B, i, j]
    width = tf.range(length)[None, :] - tf.range(length)[:, None]  # j - i
    band = (width >= 0) & (width < int(max_answer_length))
    allowed = band[None] & valid[:, :, None] & valid[:, None, :]
    scores = tf.where(allowed, scores, tf.float32.min)
    best = tf.argmax(tf.reshape(scores, [tf.shape(scores)[0], -1]), axis=-1, output_type=tf.int32)
    return best // length, best % length, tf.reduce_max(tf.reshape(scores, [tf.shape(scores)[0], -1]), axis=-1)


# ---- SQuAD metrics (the official evaluate-v1.1 normalisation) -------------------------------------------
def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation and the articles a/an/the, squeeze whitespace (SQuAD v1.1)."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, truth: str) -> float:
    """1.0 when the normalised strings are equal.

    >>> exact_match("The Eiffel Tower!", "eiffel tower"), exact_match("Paris", "in Paris")
    (1.0, 0.0)
    """
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1_score(prediction: str, truth: str) -> float:
    """Token F1 between normalised answers: 2PR/(P+R) over the multiset of shared tokens.

    >>> round(f1_score("in central Paris", "Paris"), 4)   # P = 1/3, R = 1
    0.5
    """
    pred, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    if not pred or not gold:
        return float(pred == gold)
    common = sum((collections.Counter(pred) & collections.Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions, answers) -> dict:
    """Mean exact match and F1 (0..1); each answer may be a string or a list of acceptable strings."""
    if len(predictions) != len(answers):
        raise ValueError(f"got {len(predictions)} predictions for {len(answers)} answers")
    em, f1 = [], []
    for prediction, truth in zip(predictions, answers):
        truths = [truth] if isinstance(truth, str) else list(truth)
        em.append(max(exact_match(prediction, t) for t in truths))
        f1.append(max(f1_score(prediction, t) for t in truths))
    return {"exact_match": float(np.mean(em)) if em else 0.0, "f1": float(np.mean(f1)) if f1 else 0.0}


# ---- training -------------------------------------------------------------------------------------------
def answer_token_spans(packer: QAPacker, questions, contexts, answers, answer_starts=None, row_names=None):
    """Token indices `(start, end)` of each answer in the packed sequence (the training targets).

    `answer_starts` are character offsets of the answers in the contexts (SQuAD's `answer_start`); None finds
    the first occurrence of the answer text. `row_names` name the rows in errors (default `example <i>`).

    Raises:
        ValueError: an answer that is not in its context, or was cut off by `sequence_length`.
    """
    _, starts, ends = packer.pack(tf.constant(list(questions)), tf.constant(list(contexts)))
    starts, ends = starts.numpy(), ends.numpy()
    token_starts, token_ends = [], []
    for row, (context, answer) in enumerate(zip(contexts, answers)):
        name = row_names[row] if row_names is not None else f"example {row}"
        char = context.find(answer) if answer_starts is None else int(answer_starts[row])
        if char < 0 or context[char:char + len(answer)] != answer:
            raise ValueError(f"{name}: answer {answer!r} is not in its context {context[:60]!r}...")
        begin = len(context[:char].encode("utf-8"))
        finish = begin + len(answer.encode("utf-8"))
        inside = (starts[row] >= 0) & (ends[row] > begin) & (starts[row] < finish)
        if not inside.any():
            raise ValueError(f"{name}: answer {answer!r} falls beyond sequence_length="
                             f"{packer.sequence_length} tokens (the question and the start of the context fill "
                             f"them); raise sequence_length or shorten the context")
        positions = np.flatnonzero(inside)
        if ends[row][positions[-1]] < finish:  # its start fits, its end was cut off
            raise ValueError(f"{name}: answer {answer!r} is cut off by sequence_length={packer.sequence_length} "
                             f"tokens; raise sequence_length or shorten the context")
        token_starts.append(int(positions[0]))
        token_ends.append(int(positions[-1]))
    return np.array(token_starts, "int32"), np.array(token_ends, "int32")


def qa_dataset(packer: QAPacker, questions, contexts, spans=None, batch_size: int = 16, shuffle: bool = False,
               seed: int = 0):
    """tf.data of packed `(features, {"start_logits": i, "end_logits": j})` batches (or features only)."""
    elements = (list(questions), list(contexts)) if spans is None else (
        (list(questions), list(contexts)), {"start_logits": spans[0], "end_logits": spans[1]})
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    if shuffle:
        dataset = dataset.shuffle(len(questions), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if spans is None:
        dataset = dataset.map(lambda q, c: packer.pack(q, c)[0])
    else:
        dataset = dataset.map(lambda qc, y: (packer.pack(qc[0], qc[1])[0], y))
    return dataset.prefetch(tf.data.AUTOTUNE)


def compile_question_answerer(model, total_steps: int, learning_rate: float = 5e-5, warmup_fraction: float = 0.1,
                              weight_decay: float = 0.01) -> None:
    """The BERT QA recipe: cross-entropy on the start and on the end token, AdamW with linear warmup + decay
    (`toolkit.models.bert.training.finetune_optimizer`) over `total_steps`."""
    from toolkit.models.bert.training import finetune_optimizer

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=finetune_optimizer(total_steps, learning_rate, warmup_fraction, weight_decay),
                  loss={"start_logits": loss, "end_logits": loss})


def fit_question_answerer(model, packer: QAPacker, questions, contexts, answers, answer_starts=None,
                          epochs: int = 2, batch_size: int = 16, learning_rate: float = 5e-5,
                          warmup_fraction: float = 0.1, validation=None, seed: int = 0, verbose: int = 0,
                          callbacks=None):
    """Fine-tunes `build_question_answerer` with the BERT recipe: cross-entropy on the start and the end token.

    Args:
        validation: optional `(questions, contexts, answers)`.

    Returns:
        keras `History` (`loss`, `start_logits_loss`, `end_logits_loss`).
    """
    spans = answer_token_spans(packer, questions, contexts, answers, answer_starts)
    compile_question_answerer(model, -(-len(questions) // batch_size) * epochs, learning_rate, warmup_fraction)
    train = qa_dataset(packer, questions, contexts, spans, batch_size, shuffle=True, seed=seed)
    val = None
    if validation is not None:
        val = qa_dataset(packer, validation[0], validation[1],
                         answer_token_spans(packer, *validation[:3]), batch_size)
    return model.fit(train, validation_data=val, epochs=epochs, verbose=verbose, callbacks=callbacks)


def extract_answers(outputs: dict, starts, ends, contexts, max_answer_length: int = 30) -> dict:
    """Model logits + the packer's byte offsets -> answer text and character offsets, in graph ops.

    Returns a dict of `answer` (tf.string `[B]`), `start` / `end` (int32 character offsets into the context,
    end exclusive: `context[start:end] == answer`), `score` (start + end logit), `start_token` / `end_token`.
    """
    valid = starts >= 0
    first, last, score = decode_spans(outputs["start_logits"], outputs["end_logits"], valid, max_answer_length)
    byte_start = tf.gather(starts, first, batch_dims=1)
    byte_end = tf.gather(ends, last, batch_dims=1)
    contexts = tf.convert_to_tensor(contexts)
    answer = tf.strings.substr(contexts, byte_start, byte_end - byte_start, unit="BYTE")
    char_start = tf.strings.length(tf.strings.substr(contexts, tf.zeros_like(byte_start), byte_start, unit="BYTE"), unit="UTF8_CHAR")
    return {"answer": answer, "start": char_start, "end": char_start + tf.strings.length(answer, unit="UTF8_CHAR"),
            "score": score, "start_token": first, "end_token": last}


def answer_questions(model, packer: QAPacker, questions, contexts, max_answer_length: int = 30,
                     batch_size: int = 32) -> list:
    """`[{"answer", "start", "end", "score"}]` for raw (question, context) strings, in process."""
    results = []
    for i in range(0, len(questions), batch_size):
        q, c = tf.constant(list(questions[i:i + batch_size])), tf.constant(list(contexts[i:i + batch_size]))
        features, starts, ends = packer.pack(q, c)
        out = extract_answers(model(features, training=False), starts, ends, c, max_answer_length)
        for j in range(int(q.shape[0])):
            results.append({"answer": out["answer"][j].numpy().decode("utf-8"), "start": int(out["start"][j]),
                            "end": int(out["end"][j]), "score": float(out["score"][j])})
    return results


def qa_adapter(model, packer: QAPacker, max_answer_length: int = 30, sample_questions=None, sample_contexts=None,
               dynamic: bool = True, metadata=None):
    """Raw-string SavedModel adapter: `question`, `context` (tf.string `[B]`) -> `answer`, `start`, `end`, ...

    The raw signature tokenises with offsets (`QAPacker`, tensorflow-text ops: a loading process imports
    `tensorflow_text`), pads the batch to its longest pair (multiple of 8; `dynamic=False`, the tpu variant
    `adapter.for_target("tpu")`: always `sequence_length`), runs the model, decodes the best span and slices
    the answer out of the context: `context[start:end] == answer` (characters). The dense signature takes
    packed ids and returns the two logit rows. `metadata` is merged into the export's description.

    Examples:
    >>> from toolkit.models.bert import tiny_bert
    >>> backbone, tokenizer = tiny_bert(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "who", "ann", "is"], hidden_dim=8)
    >>> model, packer = build_question_answerer(backbone), QAPacker(tokenizer, 16)
    >>> out = qa_adapter(model, packer).run_raw(model, {"question": tf.constant(["who?"]), "context": tf.constant(["Ann is"])})
    >>> answer, start, end = out["answer"][0].numpy().decode(), int(out["start"][0]), int(out["end"][0])
    >>> "Ann is"[start:end] == answer and answer != ""
    True
    """
    from toolkit.export.adapter import ServingAdapter

    def preprocess(raw):
        features, starts, ends = packer.pack(raw["question"], raw["context"])
        if not dynamic:
            return features, {"starts": starts, "ends": ends, "context": raw["context"]}
        longest = tf.reduce_max(tf.reduce_sum(features["padding_mask"], axis=1))
        length = tf.minimum(tf.shape(starts)[1], (longest + 7) // 8 * 8)
        features = {k: v[:, :length] for k, v in features.items()}
        return features, {"starts": starts[:, :length], "ends": ends[:, :length], "context": raw["context"]}

    def postprocess(outputs):
        return {k: tf.cast(outputs[k], tf.float32) for k in ("start_logits", "end_logits")}

    def finalize(outputs, context):
        if context is None:  # dense signature: no offsets to decode against
            return outputs
        answers = extract_answers(outputs, context["starts"], context["ends"], context["context"], max_answer_length)
        return {**answers, **outputs}

    questions = list(sample_questions or ["Who wrote the letter?", "Where is it?"])
    contexts = list(sample_contexts or ["The letter was written by Ann in Paris.", "It is in the box, not on it."])
    seq = None if dynamic else packer.sequence_length
    adapter = ServingAdapter(
        task="question_answering",
        raw_inputs={"question": tf.TensorSpec([None], tf.string, name="question"),
                    "context": tf.TensorSpec([None], tf.string, name="context")},
        dense_inputs={k: tf.TensorSpec([None, seq], tf.int32, name=k) for k in FEATURES},
        preprocess=preprocess,
        postprocess=postprocess,
        finalize=finalize,
        sample_raw={"question": questions, "context": contexts},
        requires=["tensorflow_text"],
        metadata={
            "input": {"question": "tf.string questions", "context": "tf.string passages holding the answers"},
            "output": {"answer": "tf.string span of the context", "start": "int32 character offset",
                       "end": "int32 character offset (exclusive)", "score": "start + end logit"},
            "preprocessing": {"tokenizer": "keras_hub BertTokenizer vocabulary (tensorflow-text WordPiece with "
                                           "offsets)", "sequence_length": packer.sequence_length,
                              "packing": "[CLS] question [SEP] context [SEP], context truncated",
                              "padding": "per batch (longest, multiple of 8)" if dynamic else f"fixed {seq}"},
            "max_answer_length": int(max_answer_length),
            **(metadata or {}),
        },
    )
    if dynamic:
        adapter.for_target = lambda target: adapter if target != "tpu" else qa_adapter(
            model, packer, max_answer_length, questions, contexts, dynamic=False, metadata=metadata)
    return adapter
