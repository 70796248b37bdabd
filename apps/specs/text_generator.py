"""The text-generator task's options, CLI facts and `generate` verb, importable without TensorFlow
(`toolkit text-generator --help`)."""

from __future__ import annotations

import dataclasses

from apps.config import BaseConfig, TaskSpec, option

LEVELS = ("character", "word")  # toolkit.models.text.generator.LEVELS (a test checks)


@dataclasses.dataclass
class Config(BaseConfig):
    """Text-generator options (every field is also a `--flag` of `toolkit text-generator train`)."""

    epochs: int = option(10, "training epochs")
    batch_size: int = option(32, "windows per batch")
    level: str = option("character", "tokens: character (no unknown tokens, small vocabulary) or word (split on "
                        "whitespace, punctuation stays on the word)", choices=LEVELS)
    max_tokens: int = option(20000, "vocabulary cap: the most frequent tokens (the rest become [UNK])")
    sequence_length: int = option(64, "context window in tokens (training windows and the decoder's positions)")
    stride: int = option(0, "tokens between the starts of training windows (0: sequence_length / 2)")
    num_layers: int = option(2, "decoder layers (masked self-attention + FFN, residual + LayerNorm)")
    hidden_dim: int = option(128, "model width d (divisible by num_heads)")
    num_heads: int = option(4, "attention heads")
    intermediate_dim: int = option(0, "FFN width (0: 4 x hidden_dim)")
    dropout: float = option(0.1, "dropout inside the decoder layers")
    generate_tokens: int = option(100, "tokens the export's serving_default generates per prompt (generate verb: "
                                  "--max-tokens)")
    temperature: float = option(0.8, "sampling temperature T of the export's serving_default: P = exp(z/T) / "
                                "sum exp(z/T); 0 = greedy (argmax)")
    top_k: int = option(0, "sample only among the k most likely tokens (0: all)")
    encoding: str = option("utf-8", "encoding of the .txt files")


class TextGeneratorSpec(TaskSpec):
    name = "text-generator"
    description = ("A small decoder-only Transformer language model trained on a .txt file or a folder of .txt "
                   "files: held-out perplexity, temperature / top-k sampling, an export that generates in-graph.")
    config_cls = Config
    ignored_options = ("monitor_layers", "monitor_every")
    extra_verbs = ("generate",)

    def add_verbs(self, verbs) -> None:
        """`toolkit text-generator generate MODEL --prompt ... --max-tokens N --temperature T`."""
        parser = verbs.add_parser(
            "generate", help="generate text from prompts with a run directory or an export",
            description="Continues each --prompt with --max-tokens tokens sampled at --temperature (0: greedy) from "
                        "a run directory or an exported model (its `generate` signature: the loop runs in the graph).")
        parser.add_argument("model", help="export folder (NAME/ or NAME/<version>/) or a run directory")
        parser.add_argument("--prompt", action="append", default=None,
                            help="text to continue (repeat for several prompts; default: one empty prompt)")
        parser.add_argument("--max-tokens", type=int, default=100, help="tokens generated per prompt")
        parser.add_argument("--temperature", type=float, default=0.8,
                            help="T of P = exp(z/T) / sum exp(z/T); 0 = greedy")
        parser.add_argument("--top-k", type=int, default=0, help="sample among the k most likely tokens (0: all)")
        parser.add_argument("--seed", type=int, default=0, help="sampling seed (same seed and prompts: same text)")
        parser.add_argument("--json", action="store_true", help="print [{prompt, text}, ...] as JSON")


SPEC = TextGeneratorSpec()
