"""`BertPacker`: tf.string sentences -> packed BERT inputs, as a layer of a functional model."""

from __future__ import annotations

import keras

from toolkit.models.bert.data import pack


@keras.saving.register_keras_serializable(package="toolkit")
class BertPacker(keras.layers.Layer):
    """tf.string sentences `[B]` -> `token_ids`, `segment_ids`, `padding_mask` (int32 `[B, L]`), in the graph.

    Wraps keras-hub's `BertTextClassifierPreprocessor` (WordPiece tokenizer + [CLS]/[SEP] packer) as a layer
    of a functional model, so the tokenizer is saved (`.keras`) and exported (SavedModel) with the model.

    Args:
        preprocessor: a `keras_hub.models.BertTextClassifierPreprocessor` (see `make_preprocessor`).

    Examples:
    >>> from toolkit.models.bert import make_preprocessor, tiny_bert
    >>> _, tokenizer = tiny_bert(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "film"], hidden_dim=8)
    >>> packer = BertPacker(make_preprocessor(tokenizer, 6))
    >>> packer(keras.ops.convert_to_tensor(["good film"]))["token_ids"].numpy().tolist()
    [[2, 5, 6, 3, 0, 0]]
    """

    def __init__(self, preprocessor, **kwargs):
        super().__init__(**kwargs)
        if isinstance(preprocessor, dict):
            preprocessor = keras.saving.deserialize_keras_object(preprocessor)
        self.preprocessor = preprocessor

    def call(self, text):
        return pack(self.preprocessor, (text,))

    def compute_output_spec(self, text):
        length = self.preprocessor.sequence_length
        return {k: keras.KerasTensor((text.shape[0], length), dtype="int32")
                for k in ("token_ids", "segment_ids", "padding_mask")}

    def get_config(self):
        return {**super().get_config(), "preprocessor": keras.saving.serialize_keras_object(self.preprocessor)}
