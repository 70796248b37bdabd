"""Serving adapters for BERT models: raw strings (or string pairs) in, tokenised inside the graph.

The raw signature runs keras-hub's BERT packer (tensorflow-text WordPiece ops: a loading process needs
`import tensorflow_text`, recorded as `requires`), cuts the batch to its longest sequence (cpu/gpu), then the
model: `scores` / `classes` / `labels` for classifiers, per-token `tokens` / `classes` / `labels` for
token classifiers, `embeddings` (+ `neighbors` / `similarities` /
`neighbor_texts` with a retrieval head) for embedders. The tpu variant (`adapter.for_target("tpu")`, applied
by `export`) pads to the fixed `sequence_length`, so the XLA compute sees static `[batch, L]` token ids.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from toolkit.export.adapter import ServingAdapter, with_classify_signature
from toolkit.models.bert.data import FEATURES, pack, trim_to_longest

SAMPLE_TEXTS = ["a short sample sentence", "Another example, with punctuation and a longer tail of words!", "x"]


@dataclasses.dataclass
class PartAdapter(ServingAdapter):
    """A `ServingAdapter` whose compute runs one named part of the model (`model_part`), or the whole model."""

    model_part: str | None = None

    def call_model(self, model, dense: dict):
        return super().call_model(model.get_layer(self.model_part) if self.model_part else model, dense)


def _adapter(model, preprocessor, task, postprocess, labels, pair, sample_texts, metadata, dynamic=True,
             finalize=None, model_part=None):
    length = int(preprocessor.sequence_length)

    def preprocess(raw):
        dense = pack(preprocessor, (raw["text"], raw["text_pair"]) if pair else (raw["text"],))
        dense = trim_to_longest(dense) if dynamic else dense
        return dense, dense  # the packed ids are also the context (token-level outputs align with them)

    samples = list(sample_texts or SAMPLE_TEXTS)
    raw_inputs = {"text": tf.TensorSpec([None], tf.string, name="text")}
    sample_raw = {"text": samples}
    if pair:
        raw_inputs["text_pair"] = tf.TensorSpec([None], tf.string, name="text_pair")
        sample_raw["text_pair"] = list(reversed(samples))
    seq = None if dynamic else length
    adapter = PartAdapter(
        task=task,
        model_part=model_part,
        raw_inputs=raw_inputs,
        dense_inputs={k: tf.TensorSpec([None, seq], tf.int32, name=k) for k in FEATURES},
        preprocess=preprocess,
        postprocess=postprocess,
        finalize=finalize,
        labels=list(labels) if labels else None,
        sample_raw=sample_raw,
        requires=["tensorflow_text"],
        metadata={
            "input": {"text": "tf.string sentences (raw)" + ("; text_pair: the second sentence" if pair else ""),
                      **{k: f"int32 [batch, {seq or 'tokens'}]" for k in FEATURES}},
            "preprocessing": {"tokenizer": "keras_hub BertTokenizer (WordPiece, tensorflow-text ops)",
                              "sequence_length": length,
                              "padding": "per batch (longest, multiple of 8)" if dynamic else f"fixed {length}",
                              "pair": bool(pair)},
            **metadata,
        },
    )
    if task == "text_classification" and not pair:
        with_classify_signature(adapter, "text")  # TF Serving Classify: bytes feature `text`
    if dynamic:
        adapter.for_target = lambda target: adapter if target != "tpu" else _adapter(
            model, preprocessor, task, postprocess, labels, pair, sample_texts, metadata, dynamic=False,
            finalize=finalize, model_part=model_part)
    return adapter


def bert_classification_adapter(model, preprocessor, class_names, pair: bool = False, sample_texts=None,
                                dynamic: bool = True, model_part: str | None = None) -> ServingAdapter:
    """Adapter for `build_text_classifier` models: `text` (+ `text_pair`) -> `scores`, `classes`, `labels`.

    Args:
        model: the classifier (inputs token_ids / segment_ids / padding_mask, output probabilities).
        preprocessor: `make_preprocessor(tokenizer, sequence_length)`.
        class_names: label names, index = class id.
        pair: sentence-pair classifier (a second `text_pair` string input).
        sample_texts: sentences for the parity check.
        dynamic: pad per batch on cpu/gpu (the tpu variant always pads to `sequence_length`).
        model_part: name of the layer holding the classifier when `model` is end-to-end (strings in).

    Examples:
    >>> from toolkit.models.bert import build_text_classifier, make_preprocessor, tiny_bert
    >>> backbone, tokenizer = tiny_bert(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"], hidden_dim=8)
    >>> model = build_text_classifier(backbone, num_classes=2)
    >>> adapter = bert_classification_adapter(model, make_preprocessor(tokenizer, 16), ["neg", "pos"])
    >>> outputs = adapter.run_raw(model, {"text": tf.constant(["good", "bad bad"])})   # what the export serves
    >>> outputs["scores"].shape, set(outputs["labels"].numpy().tolist()) <= {b"neg", b"pos"}
    (TensorShape([2, 2]), True)
    >>> adapter.for_target("tpu").dense_inputs["token_ids"].shape   # tpu: fixed sequence_length
    TensorShape([None, 16])

    `export(model, "savedmodels/polarity", adapter=adapter)` writes the raw-string SavedModel.
    """

    def postprocess(probabilities):
        probabilities = tf.cast(probabilities, tf.float32)
        return {"scores": probabilities, "classes": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

    return _adapter(model, preprocessor, "text_classification", postprocess, class_names, pair, sample_texts,
                    {}, dynamic, model_part=model_part)


def bert_embedding_adapter(model, preprocessor, sample_texts=None, corpus_texts=None,
                           dynamic: bool = True, model_part: str | None = None) -> ServingAdapter:
    """Adapter for embedders: `text` -> `embeddings` (float32 `[B, d]`, L2-normalised).

    With a retrieval model (`embeddings`, `similarities`, `neighbors` outputs, see `build_retrieval_model`)
    and `corpus_texts`, also returns `neighbor_texts` (tf.string `[B, k]`), looked up in the graph.
    """

    def postprocess(outputs):
        if isinstance(outputs, dict):
            return {k: (tf.cast(v, tf.float32) if v.dtype.is_floating else v) for k, v in outputs.items()}
        return {"embeddings": tf.cast(outputs, tf.float32)}

    finalize = None
    metadata = {}
    if corpus_texts is not None:
        corpus = [str(t) for t in corpus_texts]
        metadata["corpus_size"] = len(corpus)

        def finalize(outputs, context):
            table = tf.constant(corpus)
            return {**outputs, "neighbor_texts": tf.gather(table, outputs["neighbors"])}

    return _adapter(model, preprocessor, "text_embedding", postprocess, None, False, sample_texts, metadata,
                    dynamic, finalize, model_part=model_part)



def bert_token_classification_adapter(model, preprocessor, tag_names, sample_texts=None, dynamic: bool = True,
                                      model_part: str | None = None) -> ServingAdapter:
    """Adapter for `build_token_classifier` models: `text` -> per-token `tokens`, `scores`, `classes`, `labels`.

    On the raw signature every output is aligned with the WordPiece tokens of the packed sequence ([CLS]
    first, [SEP] last): `tokens` (tf.string `[B, T]`, the vocabulary entries; "" on padding), `scores`
    (float32 `[B, T, tags]`), `classes` (int32 `[B, T]`, -1 on padding) and `labels` (tag names, "" on
    padding). The dense signature returns `scores` and `classes` for every position.

    Examples:
    >>> from toolkit.models.bert import build_token_classifier, make_preprocessor, tiny_bert
    >>> backbone, tokenizer = tiny_bert(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ann", "smith"], hidden_dim=8)
    >>> tagger = build_token_classifier(backbone, num_tags=3)
    >>> adapter = bert_token_classification_adapter(tagger, make_preprocessor(tokenizer, 16), ["O", "B-PER", "I-PER"])
    >>> outputs = adapter.run_raw(tagger, {"text": tf.constant(["ann smith", "ann"])})
    >>> outputs["tokens"].numpy().tolist()   # per batch: padded to 8, not 16
    [[b'[CLS]', b'ann', b'smith', b'[SEP]', b'', b'', b'', b''], [b'[CLS]', b'ann', b'[SEP]', b'', b'', b'', b'', b'']]
    >>> outputs["classes"].numpy()[1, 3:].tolist()   # -1 on padding
    [-1, -1, -1, -1, -1]
    """
    vocabulary = [str(t) for t in preprocessor.tokenizer.get_vocabulary()]

    def postprocess(probabilities):
        probabilities = tf.cast(probabilities, tf.float32)
        return {"scores": probabilities, "classes": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

    def finalize(outputs, dense):
        if dense is None:  # dense signature: no packed ids to align with
            return outputs
        real = tf.cast(dense["padding_mask"], tf.bool)
        tokens = tf.gather(tf.constant(vocabulary), dense["token_ids"])
        return {**outputs, "classes": tf.where(real, outputs["classes"], -1),
                "tokens": tf.where(real, tokens, tf.constant(""))}

    return _adapter(model, preprocessor, "token_classification", postprocess, tag_names, False, sample_texts,
                    {"tags": [str(t) for t in tag_names]}, dynamic, finalize, model_part=model_part)
