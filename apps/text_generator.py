"""Text generation: a small decoder-only Transformer language model trained on the user's text.

    from apps import text_generator
    run = text_generator.train("shakespeare.txt", epochs=10)        # a .txt file, a folder of .txt, or strings
    print(run.metrics["perplexity"])                                  # held-out next-token perplexity
    text_generator.generate(run, ["To be"], max_tokens=50, temperature=0.8)
    path = run.export("savedmodels/bard")    # prompt string in, generated text out (the loop runs in the graph)

The held-out text is the last `validation_split` of the token stream (contiguous: overlapping windows of one
passage never land on both sides), or `test_data`. Metrics: cross-entropy in nats per token, perplexity
exp(cross-entropy), bits per token, next-token accuracy.
"""

from __future__ import annotations

import glob
import json
import os
import types

import keras
import numpy as np
import tensorflow as tf

from apps.base import App, Run, merge_histories, text_of
from apps.results import string_inputs
from apps.specs.text_generator import Config, TextGeneratorSpec  # noqa: F401  (Config: public as apps.text_generator.Config)
from toolkit.data import DataError
from toolkit.data.batching import steps_per_epoch
from toolkit.export.text_generator import text_generator_adapter
from toolkit.models.text.generator import TextGenerator, build_vocabulary, language_model_windows, split_tokens
from toolkit.training.optimizers import optimizer_of


def read_texts(data, encoding: str = "utf-8") -> list:
    """The documents of `data`: a list of strings, a text file, or a folder of .txt files (recursive, sorted)."""
    if isinstance(data, (list, tuple)) and all(isinstance(t, str) for t in data):
        if not data:
            raise DataError("no texts given")
        return list(data)
    if not isinstance(data, (str, os.PathLike)):
        raise DataError(f"text-generator data must be a .txt file, a folder of .txt files or a list of strings. "
                        f"Received: {type(data).__name__}")
    from toolkit.data.text import read_text_file  # a bad byte: DataError naming file, line, byte, --encoding

    path = str(data)
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "**", "*.txt"), recursive=True))
        if not files:
            raise DataError(f"folder {path!r} holds no .txt file")
    elif os.path.isfile(path):
        files = [path]
    else:
        raise DataError(f"text file or folder {path!r} does not exist")
    texts = [read_text_file(f, encoding) for f in files]
    if not any(t.strip() for t in texts):
        raise DataError(f"{path!r} holds no text")
    return texts


def token_ids(texts, vocabulary, level: str) -> np.ndarray:
    """Documents (joined by newlines) -> one id stream (tokens 2.., unknown 1), as `TextGenerator.tokenize`."""
    index = {token: i + 2 for i, token in enumerate(vocabulary)}
    tokens = split_tokens(tf.constant(["\n".join(texts)]), level).flat_values.numpy()
    return np.array([index.get(t.decode("utf-8"), 1) for t in tokens], dtype="int64")


def _batches(x, y, batch_size, shuffle_seed=None):
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(x), seed=shuffle_seed)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class TextGeneratorApp(TextGeneratorSpec, App):
    def validate(self, config) -> None:
        if config.hidden_dim % config.num_heads:
            raise ValueError(f"hidden_dim ({config.hidden_dim}) must be divisible by num_heads ({config.num_heads})")
        if config.sequence_length < 2:
            raise ValueError(f"sequence_length must be >= 2. Received: sequence_length={config.sequence_length}")
        if config.generate_tokens < 1 or config.temperature < 0 or config.top_k < 0:
            raise ValueError("generate_tokens must be >= 1, temperature and top_k >= 0. Received: "
                             f"generate_tokens={config.generate_tokens}, temperature={config.temperature}, "
                             f"top_k={config.top_k}")

    def load_data(self, data, config, test_data=None):
        texts = read_texts(data, config.encoding)
        vocabulary = build_vocabulary("\n".join(texts), config.level, config.max_tokens)
        ids = token_ids(texts, vocabulary, config.level)
        length = config.sequence_length
        held = int(round(len(ids) * config.validation_split))
        held = held if held > length else 0  # too little for one window: no validation split
        train_ids, val_ids = (ids[:-held], ids[-held:]) if held else (ids, ids[:0])
        x, y = language_model_windows(train_ids, length, config.stride or None)
        if not len(x):
            raise DataError(f"the training text has {len(train_ids)} tokens after the validation split; "
                            f"sequence_length={length} needs at least {length + 1} (shorten --sequence-length)")
        validation = None
        if held:
            vx, vy = language_model_windows(val_ids, length, length)
            validation = _batches(vx, vy, config.batch_size)
        info = {"vocabulary": vocabulary, "level": config.level, "sequence_length": length,
                "encoding": config.encoding}
        test = self.eval_dataset(test_data, info, config) if test_data is not None else None
        return types.SimpleNamespace(train=_batches(x, y, config.batch_size, config.seed), validation=validation,
                                     test=test, vocabulary=vocabulary, num_tokens=len(ids), num_windows=len(x))

    def info(self, ctx) -> dict:
        data, config = ctx.data, ctx.config
        return {"vocabulary": data.vocabulary, "level": config.level, "sequence_length": config.sequence_length,
                "encoding": config.encoding, "num_tokens": data.num_tokens, "num_train_windows": data.num_windows,
                "generate_tokens": config.generate_tokens, "temperature": config.temperature, "top_k": config.top_k,
                "seed": config.seed}

    def build_model(self, ctx) -> keras.Model:
        config = ctx.config
        return TextGenerator(ctx.data.vocabulary, config.level, config.sequence_length, config.num_layers,
                             config.hidden_dim, config.num_heads, config.intermediate_dim or None, config.dropout)

    def fit(self, model, ctx, callbacks) -> dict:
        data, config = ctx.data, ctx.config
        model.compile(optimizer=optimizer_of(config, steps_per_epoch=steps_per_epoch(data.train)),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        history = model.fit(data.train, validation_data=data.validation, epochs=config.epochs, callbacks=callbacks,
                            verbose=config.verbose, shuffle=False)
        return merge_histories(history)

    def serving_adapter(self, run):
        info = run.info
        return text_generator_adapter(run.model, int(info["generate_tokens"]), float(info["temperature"]),
                                      int(info["top_k"]), int(info["seed"]))

    def export_adapter(self, run, target, formats, **options):
        given = {k: v for k, v in options.items() if v is not None}
        if given:
            raise ValueError(f"{self.name} export takes no option(s) {sorted(given)}")
        return run.adapter

    def eval_dataset(self, data, info, config=None):
        """Held-out text -> batches of non-overlapping windows `(token_ids, targets)` in the model's vocabulary."""
        texts = read_texts(data, info.get("encoding", "utf-8"))
        length = int(info["sequence_length"])
        ids = token_ids(texts, info["vocabulary"], info["level"])
        x, y = language_model_windows(ids, length, length)
        if not len(x):
            raise DataError(f"the evaluation text has {len(ids)} tokens; one window needs {length + 1}")
        return _batches(x, y, getattr(config, "batch_size", 32))

    def score(self, predictor, dataset, info) -> dict:
        total, correct, count = 0.0, 0, 0
        for x, y in dataset:
            out = predictor({"token_ids": np.asarray(x), "targets": np.asarray(y)}, signature="log_likelihood")
            scored = np.asarray(y) > 0
            total += float(-np.asarray(out["log_probs"], "float64")[scored].sum())
            correct += int(np.asarray(out["correct"])[scored].sum())
            count += int(scored.sum())
        nats = total / max(count, 1)
        return {"cross_entropy": nats, "perplexity": float(np.exp(nats)), "bits_per_token": nats / np.log(2.0),
                "next_token_accuracy": correct / max(count, 1), "num_tokens": count}

    def raw_inputs(self, inputs, info) -> dict:
        return {"prompt": string_inputs(inputs, "prompts")}

    def format_predictions(self, outputs, inputs, top_k=None, score_threshold=None, labels=None) -> list:
        return [{"text": text_of(t)} for t in outputs["text"]]

    def generate(self, path_or_run, prompts, max_tokens: int = 100, temperature: float = 0.8, top_k: int = 0,
                 seed: int = 0) -> list:
        """Continuations of `prompts` from a Run, a run directory's Run or an export (its `generate` signature)."""
        prompts = self.raw_inputs(prompts, {})["prompt"]
        if max_tokens < 1 or temperature < 0 or top_k < 0:
            raise ValueError(f"max_tokens must be >= 1, temperature and top_k >= 0. Received: max_tokens={max_tokens}, "
                             f"temperature={temperature}, top_k={top_k}")
        options = {"max_tokens": tf.constant(max_tokens, tf.int32), "temperature": tf.constant(temperature, tf.float32),
                   "top_k": tf.constant(top_k, tf.int32), "seed": tf.constant(seed, tf.int32)}
        if isinstance(path_or_run, Run):
            out = path_or_run.adapter.run_extra(path_or_run.model, "generate", {"prompt": prompts, **options})
        else:
            predictor = self.predictor(path_or_run)
            rows = list(prompts)
            batch = getattr(predictor, "batch_size", None)  # a tpu export takes exactly its static batch
            if batch and len(rows) < batch:
                rows += [rows[-1]] * (batch - len(rows))
            if batch and len(rows) > batch:
                raise ValueError(f"this export takes {batch} prompts at a time (static batch); got {len(rows)}")
            out = predictor.signatures["generate"](prompt=tf.constant(rows), **options)
        return [text_of(t) for t in np.asarray(out["text"].numpy())[:len(prompts)]]

    def run_verb(self, args) -> int:
        """The `generate` verb of the CLI."""
        model = args.model
        if os.path.isfile(os.path.join(model, "model.keras")):
            model = self.load_run(model)
        prompts = args.prompt or [""]
        texts = self.generate(model, prompts, args.max_tokens, args.temperature, args.top_k, args.seed)
        if args.json:
            print(json.dumps([{"prompt": p, "text": t} for p, t in zip(prompts, texts)], indent=2))
        else:
            for prompt, text in zip(prompts, texts):
                print(f"{prompt}{text}")
        return 0


APP = TextGeneratorApp()
train = APP.train
evaluate = APP.evaluate
predict = APP.predict
generate = APP.generate
