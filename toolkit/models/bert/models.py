"""Task heads on a keras-hub `BertBackbone`: sentence (pair) classifier, token classifier, embedder.

The classifier mean-pools the token vectors by default: all-MiniLM-L6-v2's [CLS] pooler was never trained
(sentence-transformers mean-pools), so keras-hub's `BertTextClassifier`, which reads that pooler, is near
chance with a frozen backbone. Pooling uses Keras' masked `GlobalAveragePooling1D`; the embedder is
keras-hub's own `BertTextEmbedder` (mean pooling + L2 norm), so nothing here re-implements keras-hub.
"""

from __future__ import annotations

import keras
import keras_hub

POOLINGS = ("mean", "cls")


def bert_inputs() -> dict:
    """The three int32 `[batch, tokens]` inputs every BERT model here takes (tokens: any length)."""
    return {name: keras.Input((None,), dtype="int32", name=name)
            for name in ("token_ids", "segment_ids", "padding_mask")}


def _mean_pool(sequence, padding_mask):
    mask = keras.ops.cast(padding_mask, "bool")
    return keras.layers.GlobalAveragePooling1D(name="mean_pool")(sequence, mask=mask)


def build_text_classifier(backbone, num_classes: int, pooling: str = "mean", dropout: float = 0.1,
                          name: str = "bert_classifier") -> keras.Model:
    """BERT sentence / sentence-pair classifier returning class probabilities `[batch, num_classes]`.

    Sentence pairs need no other model: the preprocessor packs `[CLS] a [SEP] b [SEP]` with segment ids.

    Args:
        backbone: a `keras_hub.models.BertBackbone` (see `load_bert`, `tiny_bert`).
        num_classes: number of classes (>= 2).
        pooling: `"mean"` (masked mean of the token vectors; right for MiniLM) or `"cls"` (BERT's pooler).
        dropout: dropout before the output layer.

    Examples:
    >>> from toolkit.models.bert import make_preprocessor, pack, tiny_bert
    >>> backbone, tokenizer = tiny_bert(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"], hidden_dim=8)
    >>> model = build_text_classifier(backbone, num_classes=2)
    >>> features = pack(make_preprocessor(tokenizer, 8), tf.constant(["good", "bad bad"]))
    >>> probabilities = model(features).numpy()
    >>> probabilities.shape, np.allclose(probabilities.sum(axis=-1), 1.0)
    ((2, 2), True)
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}. Received: pooling={pooling!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2. Received: num_classes={num_classes}")
    inputs = bert_inputs()
    outputs = backbone(inputs)
    if pooling == "mean":
        pooled = _mean_pool(outputs["sequence_output"], inputs["padding_mask"])
    else:
        pooled = outputs["pooled_output"]
    pooled = keras.layers.Dropout(dropout, name="head_dropout")(pooled)
    probabilities = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="logits")(pooled)
    return keras.Model(inputs, probabilities, name=name)


def build_token_classifier(backbone, num_tags: int, dropout: float = 0.1,
                           name: str = "bert_token_classifier") -> keras.Model:
    """Per-token classifier (NER, POS): every token vector -> linear -> softmax, `[batch, tokens, num_tags]`.

    Train with `sample_weight = padding_mask` (see `token_sample_weights`) so padding does not count.

    Examples:
    >>> from toolkit.models.bert import make_preprocessor, pack, tiny_bert
    >>> backbone, tokenizer = tiny_bert(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ann", "smith"], hidden_dim=8)
    >>> model = build_token_classifier(backbone, num_tags=5)
    >>> model(pack(make_preprocessor(tokenizer, 6), tf.constant(["ann smith"]))).shape
    TensorShape([1, 6, 5])
    """
    inputs = bert_inputs()
    sequence = backbone(inputs)["sequence_output"]
    sequence = keras.layers.Dropout(dropout, name="head_dropout")(sequence)
    tags = keras.layers.Dense(num_tags, activation="softmax", dtype="float32", name="tags")(sequence)
    return keras.Model(inputs, tags, name=name)


def build_embedder(backbone, normalize: bool = True):
    """keras-hub's `BertTextEmbedder` without a preprocessor: packed ids -> mean-pooled (L2-normalised) vectors.

    Examples:
    >>> from toolkit.models.bert import make_preprocessor, pack, tiny_bert
    >>> backbone, tokenizer = tiny_bert(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"], hidden_dim=8)
    >>> embedder = build_embedder(backbone)
    >>> features = pack(make_preprocessor(tokenizer, 8), tf.constant(["good", "bad bad"]))
    >>> vectors = keras.ops.convert_to_numpy(embedder(features))
    >>> vectors.shape, np.allclose(np.linalg.norm(vectors, axis=-1), 1.0, atol=1e-5)
    ((2, 8), True)
    """
    return keras_hub.models.BertTextEmbedder(backbone, preprocessor=None, pooling_mode="mean", normalize=normalize)


def find_backbone(model):
    """The `BertBackbone` inside a model built here (or the model itself)."""
    if isinstance(model, keras_hub.models.BertBackbone):
        return model
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras_hub.models.BertBackbone):
            return layer
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, keras_hub.models.BertBackbone):
        return backbone
    raise ValueError(f"model {getattr(model, 'name', model)!r} contains no keras_hub BertBackbone")
