"""The text-classification serving adapter: raw `tf.string` sentences in, scores / classes / labels out.

The end-to-end model (see `toolkit.models.text.classifiers.text_classifier`) holds two named parts: a
`preprocessor` (strings -> token ids, a bag-of-words, or a dict of tensors such as BERT's token_ids /
padding_mask / segment_ids) and a `classifier` (those dense tensors -> probabilities). The raw signature runs
both; the dense signature and the tpu target's XLA function run only the classifier (no string ops).
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from toolkit.export.adapter import ServingAdapter, with_classify_signature

DEFAULT_SAMPLES = ["a short sample sentence", "another example, with punctuation!", "x"]


@dataclasses.dataclass
class TextServingAdapter(ServingAdapter):
    """A `ServingAdapter` whose compute is the model's `classifier` part (the model itself is end-to-end)."""

    def call_model(self, model, dense: dict):
        classifier = model.get_layer("classifier")
        if len(dense) == 1:
            return classifier(next(iter(dense.values())), training=False)
        return classifier(dense, training=False)


def text_classification_adapter(model, class_names, sample_texts=None, requires=None) -> TextServingAdapter:
    """Serving adapter for an end-to-end text classifier with `preprocessor` and `classifier` parts.

    Raw signature: `text` (tf.string `[B]`) -> `scores` (float32 `[B, K]`), `classes` (int32 `[B]`),
    `labels` (tf.string `[B]`); `classify` (TF Serving's classification method): serialized `tf.Example`s
    with the sentence in bytes feature `text` -> `classes` (every label name, `[B, K]`), `scores`. Dense signature: whatever the preprocessor produces (names from the
    classifier's inputs, or the preprocessor's dict keys).

    Args:
        model: the end-to-end Keras model.
        class_names: label names, index = class id.
        sample_texts: sentences for the parity check (defaults to a few fixed ones).
        requires: modules a loading process must import; default: `tensorflow_text` when the preprocessor
            uses keras-hub layers (their tokenisers are tensorflow-text ops).

    Examples:
    >>> from toolkit.models.text.classifiers import build_bow_classifier, text_classifier
    >>> from toolkit.models.text.vectorize import build_vectorizer
    >>> preprocessor = build_vectorizer(["good film", "bad film"], mode="count", max_tokens=None)
    >>> model = text_classifier(preprocessor, build_bow_classifier(4, 2, units=4))   # 4 = [UNK] + 3 words
    >>> adapter = text_classification_adapter(model, ["neg", "pos"])
    >>> sorted(adapter.dense_inputs), adapter.requires
    (['features'], [])
    >>> outputs = adapter.run_raw(model, {"text": tf.constant(["good film", "bad"])})   # what `export` serves
    >>> outputs["scores"].shape, outputs["labels"].shape
    (TensorShape([2, 2]), TensorShape([2]))

    `export(model, "savedmodels/polarity", adapter=adapter)` writes it as a raw-string SavedModel.
    """
    preprocessor = model.get_layer("preprocessor")
    classifier = model.get_layer("classifier")
    samples = list(sample_texts or DEFAULT_SAMPLES)
    probe = preprocessor(tf.constant(samples))
    if isinstance(probe, dict):
        dense_specs = {k: tf.TensorSpec([None, *v.shape[1:]], v.dtype, name=k) for k, v in probe.items()}
    else:
        input_name = classifier.inputs[0].name.split(":")[0] if classifier.inputs else "features"
        dense_specs = {input_name: tf.TensorSpec([None, *probe.shape[1:]], probe.dtype, name=input_name)}
    names = list(dense_specs)

    def preprocess(raw):
        out = preprocessor(raw["text"])
        if isinstance(out, dict):
            return {k: out[k] for k in names}, None
        return {names[0]: out}, None

    def postprocess(probabilities):
        probabilities = tf.cast(probabilities, tf.float32)
        return {"scores": probabilities, "classes": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

    if requires is None:
        uses_hub = any(type(layer).__module__.startswith("keras_hub") for layer in preprocessor._flatten_layers())
        requires = ["tensorflow_text"] if uses_hub else []
    adapter = TextServingAdapter(
        task="text_classification",
        raw_inputs={"text": tf.TensorSpec([None], tf.string, name="text")},
        dense_inputs=dense_specs,
        preprocess=preprocess,
        postprocess=postprocess,
        labels=list(class_names),
        sample_raw={"text": samples},
        requires=list(requires),
        metadata={
            "input": {"text": "tf.string sentences, one per row (raw, untokenised)",
                      **{k: f"{v.dtype.name} {['batch', *v.shape[1:]]}" for k, v in dense_specs.items()}},
            "preprocessing": {"in_graph": type(preprocessor).__name__, "dense_inputs": names},
        },
    )
    return with_classify_signature(adapter, "text")  # TF Serving Classify: bytes feature `text`
