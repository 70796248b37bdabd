"""Extractive question answering: BERT / MiniLM + start and end heads, fine-tuned on the user's (question, context,
answer) rows.

    from apps import question_answerer
    run = question_answerer.train("squad_rows.jsonl", epochs=3)           # .jsonl / .csv / SQuAD .json / a list
    print(run.metrics["exact_match"], run.metrics["f1"])                 # on the held-out rows (SQuAD v1.1 EM / F1)
    question_answerer.predict(run, [{"question": "Who wrote it?", "context": "It was written by Ann."}])
    path = run.export("savedmodels/reader")   # (question, context) strings in; answer, start, end, score out

The packed input is `[CLS] question [SEP] context [SEP]` (`toolkit.models.bert.qa.QAPacker`, which also keeps
each token's character span); two linear heads give start and end logits and decoding takes the best span
(i <= j, at most `max_answer_length` tokens) inside the context. The held-out rows are `validation_split` of the
rows (shuffled with `seed`), or `test_data`. The run directory keeps the checkpoint's WordPiece vocabulary
(`vocab.txt`) beside `model.keras`, so a new process rebuilds the tokenizer from the run alone.
"""

from __future__ import annotations

import json
import os
import types

import keras
import numpy as np

from apps.base import App, merge_histories, text_of
from apps.specs.question_answerer import Config, QuestionAnswererSpec  # noqa: F401  (public as apps.question_answerer.Config)
from apps.text_models import default_checkpoint
from toolkit.data import DataError
from toolkit.data.qa_rows import SUFFIXES, read_qa_rows
from toolkit.models.bert import qa

VOCABULARY_FILE = "vocab.txt"
EVAL_BATCH = 32


def _max_positions(source: str) -> int | None:
    """The checkpoint's position-table size from its config.json (keras-hub or Hugging Face folder), or None."""
    path = os.path.join(os.fspath(source), "config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    value = inner.get("max_sequence_length") or config.get("max_position_embeddings")
    return int(value) if value else None


def _tokenizer(source: str):
    import keras_hub

    from toolkit.models.bert import source_kind

    source_kind(source)  # an unusable checkpoint path: a clear error before anything loads
    return keras_hub.models.BertTokenizer.from_preset(source)


def _tokenizer_facts(tokenizer) -> dict:
    return {"lowercase": bool(tokenizer.lowercase), "strip_accents": bool(getattr(tokenizer, "strip_accents", False)),
            "split_on_cjk": bool(getattr(tokenizer, "split_on_cjk", True))}


def _columns(rows) -> tuple:
    return [r.question for r in rows], [r.context for r in rows]


def _held_batches(rows) -> list:
    """Scoring batches `(questions, contexts, acceptable answers)`."""
    return [(*_columns(rows[i:i + EVAL_BATCH]), [list(r.answers) for r in rows[i:i + EVAL_BATCH]])
            for i in range(0, len(rows), EVAL_BATCH)]


def _pair(item, index: int) -> list:
    """One predict input -> `[{"question", "context"[, "where"]}, ...]` (a file gives one per row)."""
    if isinstance(item, bytes):
        item = item.decode("utf-8")
    if isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(v, str) for v in item):
        item = {"question": item[0], "context": item[1]}
    if isinstance(item, (str, os.PathLike)):
        text = os.fspath(item)
        if os.path.isfile(text) and text.lower().endswith(SUFFIXES):
            return [{"question": r.question, "context": r.context, "where": r.where} for r in
                    read_qa_rows(text, require_answer=False)]
        if text.lstrip().startswith(("{", "[")):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                raise DataError(f"input {index + 1} is not valid JSON ({error.msg}): {text[:60]!r}") from error
            return [p for v in (value if isinstance(value, list) else [value]) for p in _pair(v, index)]
        raise DataError(f"input {index + 1} ({text[:60]!r}): give a .jsonl / .csv / .json file of question, context "
                        "rows or a JSON object {\"question\": ..., \"context\": ...}")
    if isinstance(item, dict):
        row = read_qa_rows([item], require_answer=False)[0]  # checks both strings, names what is missing
        return [{"question": row.question, "context": row.context, **({"where": item["where"]} if "where" in item
                                                                       else {})}]
    raise DataError(f"input {index + 1}: expected a (question, context) pair, a dict, a JSON object or a rows file. "
                    f"Received: {type(item).__name__}")


class QuestionAnswererApp(QuestionAnswererSpec, App):
    def validate(self, config) -> None:
        if config.sequence_length < 8:
            raise ValueError(f"sequence_length must be >= 8. Received: sequence_length={config.sequence_length}")
        if config.max_answer_length < 1:
            raise ValueError(f"max_answer_length must be >= 1. Received: max_answer_length={config.max_answer_length}")
        if not 0.0 <= config.warmup_fraction < 1.0 or config.learning_rate <= 0:
            raise ValueError(f"need 0 <= warmup_fraction < 1 and learning_rate > 0. Received: warmup_fraction="
                             f"{config.warmup_fraction}, learning_rate={config.learning_rate}")

    def load_data(self, data, config, test_data=None):
        rows = read_qa_rows(data, config.encoding)
        order = np.random.default_rng(config.seed).permutation(len(rows))
        rows = [rows[i] for i in order]
        held = int(round(len(rows) * config.validation_split)) if config.validation_split > 0 else 0
        if config.validation_split > 0 and len(rows) >= 2:
            held = max(1, held)
        if held >= len(rows):
            raise DataError(f"{len(rows)} row(s) leave nothing to train on after validation_split="
                            f"{config.validation_split}; give more rows or lower --validation-split")
        train_rows, val_rows = rows[held:], rows[:held]
        test_rows = read_qa_rows(test_data, config.encoding) if test_data is not None else None
        source = config.checkpoint or default_checkpoint()
        tokenizer = _tokenizer(source)
        limit = _max_positions(source)
        length = min(int(config.sequence_length), limit) if limit else int(config.sequence_length)
        packer = qa.QAPacker(tokenizer, length)

        def batches(part, shuffle):
            q, c = _columns(part)
            spans = qa.answer_token_spans(packer, q, c, [r.answer for r in part], [r.answer_start for r in part],
                                          row_names=[r.where for r in part])  # an answer cut off: names the row
            return qa.qa_dataset(packer, q, c, spans, config.batch_size, shuffle=shuffle, seed=config.seed)

        return types.SimpleNamespace(
            train=batches(train_rows, True), validation=batches(val_rows, False) if val_rows else None,
            test=_held_batches(test_rows) if test_rows else None,
            held=_held_batches(test_rows or val_rows) if (test_rows or val_rows) else None,
            tokenizer=tokenizer, packer=packer, checkpoint=source, num_train=len(train_rows),
            num_validation=len(val_rows), samples=[(r.question, r.context) for r in train_rows[:3]])

    def held_out(self, data):
        return getattr(data, "held", None)

    def build_model(self, ctx) -> keras.Model:
        from toolkit.models.bert import load_bert

        backbone, _ = load_bert(ctx.data.checkpoint)
        if ctx.run_dir:  # the tokenizer of this run, as data: a new process rebuilds it from the run directory
            with open(os.path.join(ctx.run_dir, VOCABULARY_FILE), "w", encoding="utf-8") as f:
                f.write("\n".join(ctx.data.tokenizer.get_vocabulary()) + "\n")
        return qa.build_question_answerer(backbone, dropout=ctx.config.dropout, name="question_answerer")

    def info(self, ctx) -> dict:
        data, config = ctx.data, ctx.config
        return {"checkpoint": data.checkpoint, "sequence_length": data.packer.sequence_length,
                "max_answer_length": config.max_answer_length, "vocabulary_file": VOCABULARY_FILE,
                **_tokenizer_facts(data.tokenizer), "num_train_rows": data.num_train,
                "num_validation_rows": data.num_validation, "encoding": config.encoding}

    def fit(self, model, ctx, callbacks) -> dict:
        from toolkit.data.batching import steps_per_epoch

        data, config = ctx.data, ctx.config
        steps = steps_per_epoch(data.train) * config.epochs
        qa.compile_question_answerer(model, steps, config.learning_rate, config.warmup_fraction,
                                     config.weight_decay)
        history = model.fit(data.train, validation_data=data.validation, epochs=config.epochs, callbacks=callbacks,
                            verbose=config.verbose, shuffle=False)  # qa_dataset shuffles
        return merge_histories(history)

    def packer_of(self, run) -> qa.QAPacker:
        """The run's `QAPacker`: from the training data in this process, else from the run directory's vocabulary."""
        if run.data is not None and getattr(run.data, "packer", None) is not None:
            return run.data.packer
        import keras_hub

        info = run.info
        path = os.path.join(run.run_dir or "", info.get("vocabulary_file", VOCABULARY_FILE))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{run.run_dir!r} has no {VOCABULARY_FILE} (the run's tokenizer vocabulary)")
        with open(path, encoding="utf-8") as f:
            vocabulary = [line.rstrip("\n") for line in f if line.rstrip("\n")]
        tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=info["lowercase"],
                                                   strip_accents=info["strip_accents"],
                                                   split_on_cjk=info["split_on_cjk"])
        return qa.QAPacker(tokenizer, int(info["sequence_length"]))

    def serving_adapter(self, run):
        # parity samples: a few training rows in the training process (never written into the export's metadata),
        # else the adapter's own sentences
        samples = getattr(run.data, "samples", None) or [(None, None)]
        questions, contexts = [q for q, _ in samples if q], [c for _, c in samples if c]
        return qa.qa_adapter(run.model, self.packer_of(run), int(run.info["max_answer_length"]),
                             questions or None, contexts or None)

    def eval_dataset(self, data, info, config=None):
        return _held_batches(read_qa_rows(data, info.get("encoding", "utf-8")))

    def score(self, predictor, dataset, info) -> dict:
        predictions, answers = [], []
        for questions, contexts, truths in dataset:
            out = predictor({"question": list(questions), "context": list(contexts)}, signature="serving_default")
            predictions.extend(text_of(a) for a in np.asarray(out["answer"]).ravel()[:len(questions)])
            answers.extend(truths)
        scores = qa.squad_scores(predictions, answers)
        return {"exact_match": scores["exact_match"], "f1": scores["f1"], "num_examples": len(predictions)}

    def input_items(self, inputs) -> list:
        """Predict inputs -> `[{"question", "context"[, "where"]}]`: one `(question, context)` pair or dict, a list
        of them, a columnar `{"question": [...], "context": [...]}`, JSON object strings, or rows files."""
        if isinstance(inputs, dict) and not isinstance(inputs.get("question"), str) and "question" in inputs:
            return [{"question": q, "context": c} for q, c in zip(inputs["question"], inputs.get("context", []))]
        if isinstance(inputs, dict) or (isinstance(inputs, tuple) and len(inputs) == 2
                                        and all(isinstance(v, str) for v in inputs)):
            inputs = [inputs]
        items = [inputs] if isinstance(inputs, (str, bytes, os.PathLike)) else list(inputs)
        return [pair for index, item in enumerate(items) for pair in _pair(item, index)]

    def raw_inputs(self, inputs, info) -> dict:
        pairs = self.input_items(inputs)
        if not pairs:
            raise DataError("no (question, context) inputs given")
        return {"question": [p["question"] for p in pairs], "context": [p["context"] for p in pairs]}

    def format_predictions(self, outputs, inputs, top_k=None, score_threshold=None, labels=None) -> list:
        return [{"question": item["question"], "answer": text_of(outputs["answer"][i]), "start": int(outputs["start"][i]),
                 "end": int(outputs["end"][i]), "score": float(outputs["score"][i])} for i, item in enumerate(inputs)]

    def predict(self, path_or_run, inputs, output_dir=None, top_k=None, score_threshold=None) -> list:
        """`[{"question", "answer", "start", "end", "score", "input"}]`: `context[start:end] == answer`
        (characters); `input` names a file row (`rows.jsonl line 3`) or the input's index."""
        items = self.input_items(inputs)
        results = super().predict(path_or_run, items, output_dir=output_dir)
        for item, result in zip(items, results):
            result["input"] = item.get("where") or result["input"]
        return results


APP = QuestionAnswererApp()
train = APP.train
evaluate = APP.evaluate
predict = APP.predict
