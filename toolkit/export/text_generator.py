"""The text-generator serving adapter: a prompt string in, generated text out, the decode loop in the graph.

- `serving_default`: `prompt` (tf.string `[B]`) -> `text` (the continuation, tf.string `[B]`) and `token_ids`
  (int64 `[B, max_tokens]`), sampled at the export's temperature / top-k with its seed (the same prompts in
  the same batch give the same text).
- `serving_dense`: the packed prompt (`token_ids` int64 `[B, sequence_length]`, right-padded, `lengths`
  int32 `[B]`) -> the same outputs; its compute (the `tf.while_loop` decode) has no string ops, so the tpu
  target compiles it with XLA at a static batch.
- `generate`: `prompt`, `max_tokens`, `temperature`, `top_k`, `seed` (scalars) -> `text`, `token_ids`: every
  sampling option per request.
- `log_likelihood`: `token_ids`, `targets` (int64 `[B, sequence_length]`, target 0 = not scored) ->
  `log_probs` (log P(target_t | tokens <= t)) and `correct` (argmax == target): held-out perplexity from an
  export.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from toolkit.export.adapter import ExtraSignature, ServingAdapter

DEFAULT_PROMPTS = ["The ", "a", ""]


@dataclasses.dataclass
class GeneratorServingAdapter(ServingAdapter):
    """A `ServingAdapter` whose compute is the model's decode loop at fixed sampling options."""

    max_tokens: int = 100
    temperature: float = 1.0
    top_k: int = 0
    seed: int = 0

    def call_model(self, model, dense: dict):
        return model.generate_ids(dense["token_ids"], dense["lengths"], int(self.max_tokens), float(self.temperature),
                                  int(self.top_k), tf.constant([int(self.seed), 0], tf.int32))


def log_likelihood(model, inputs: dict) -> dict:
    """`log_probs`, `correct` `[B, L]` of `targets` given `token_ids` (0 targets give 0 and False)."""
    logits = tf.cast(model(tf.cast(inputs["token_ids"], tf.int64), training=False), tf.float32)
    targets = tf.cast(inputs["targets"], tf.int64)
    log_probs = -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    scored = targets > 0
    correct = tf.equal(tf.argmax(logits, axis=-1), targets) & scored
    return {"log_probs": tf.where(scored, log_probs, 0.0), "correct": correct}


def text_generator_adapter(model, max_tokens: int = 100, temperature: float = 1.0, top_k: int = 0, seed: int = 0,
                           sample_prompts=None) -> GeneratorServingAdapter:
    """Serving adapter of a `toolkit.models.text.generator.TextGenerator`.

    Examples:
    >>> from toolkit.models.text.generator import TextGenerator
    >>> model = TextGenerator(list("ab "), sequence_length=6, num_layers=1, hidden_dim=8, num_heads=2)
    >>> adapter = text_generator_adapter(model, max_tokens=4, temperature=0.0)
    >>> out = adapter.run_raw(model, {"prompt": tf.constant(["ab", "b a"])})   # what `export` serves
    >>> out["token_ids"].shape, [len(t) for t in out["text"].numpy()]
    (TensorShape([2, 4]), [4, 4])
    """
    if max_tokens < 1 or temperature < 0 or top_k < 0:
        raise ValueError(f"max_tokens must be >= 1, temperature and top_k >= 0. Received: max_tokens={max_tokens}, "
                         f"temperature={temperature}, top_k={top_k}")
    length = model.sequence_length
    prompts = list(sample_prompts or DEFAULT_PROMPTS)

    def preprocess(raw):
        token_ids, lengths = model.pack(raw["prompt"])
        return {"token_ids": token_ids, "lengths": lengths}, None

    def postprocess(ids):
        return {"token_ids": ids}

    def finalize(outputs, context):
        return {**outputs, "text": model.detokenize(outputs["token_ids"])}

    def generate(model, inputs):
        token_ids, lengths = model.pack(inputs["prompt"])
        seed = tf.stack([tf.cast(inputs["seed"], tf.int32), tf.constant(0, tf.int32)])
        ids = model.generate_ids(token_ids, lengths, inputs["max_tokens"], inputs["temperature"], inputs["top_k"],
                                 seed)
        return {"token_ids": ids, "text": model.detokenize(ids)}

    scalar = {"max_tokens": tf.int32, "temperature": tf.float32, "top_k": tf.int32, "seed": tf.int32}
    window = tf.TensorSpec([None, length], tf.int64)
    sample_window = model.pack(tf.constant(prompts))[0].numpy()
    extra = {
        "generate": ExtraSignature(
            inputs={"prompt": tf.TensorSpec([None], tf.string, name="prompt"),
                    **{k: tf.TensorSpec([], dtype, name=k) for k, dtype in scalar.items()}},
            function=generate,
            sample={"prompt": prompts, "max_tokens": 5, "temperature": 0.8, "top_k": 3, "seed": 1},
            description="prompt, max_tokens, temperature (0: greedy), top_k (0: all), seed -> text, token_ids"),
        "log_likelihood": ExtraSignature(
            inputs={"token_ids": tf.TensorSpec(window.shape, tf.int64, name="token_ids"),
                    "targets": tf.TensorSpec(window.shape, tf.int64, name="targets")},
            function=log_likelihood,
            sample={"token_ids": sample_window, "targets": sample_window},
            description="token_ids, targets [B, sequence_length] -> log_probs, correct (held-out perplexity)"),
    }
    return GeneratorServingAdapter(
        task="text_generation",
        raw_inputs={"prompt": tf.TensorSpec([None], tf.string, name="prompt")},
        dense_inputs={"token_ids": tf.TensorSpec([None, length], tf.int64, name="token_ids"),
                      "lengths": tf.TensorSpec([None], tf.int32, name="lengths")},
        preprocess=preprocess,
        postprocess=postprocess,
        finalize=finalize,
        sample_raw={"prompt": prompts},
        extra_signatures=extra,
        metadata={
            "input": {"prompt": "tf.string prompts, one per row (raw text)"},
            "generation": {"max_tokens": int(max_tokens), "temperature": float(temperature), "top_k": int(top_k),
                           "seed": int(seed), "level": model.level, "sequence_length": length,
                           "decoding": "in-graph tf.while_loop, Gumbel-max sampling from softmax(z / T)"},
        },
        max_tokens=int(max_tokens), temperature=float(temperature), top_k=int(top_k), seed=int(seed),
    )
