"""Sentence embeddings and semantic search: a BERT checkpoint + a corpus -> a SavedModel that answers queries.

    from apps import text_embedder
    run = text_embedder.train(["Mars is the red planet.", "Venus is Earth's twin."], checkpoint=PATH)
    text_embedder.predict(run, ["Which planet is red?"])       # top-k corpus neighbours with cosine scores
    text_embedder.embed(run, ["any sentence"])                  # [n, d] unit vectors
    path = run.export("savedmodels/planets")   # text in; embeddings, similarities, neighbors, neighbor_texts out

"Training" indexes the corpus: the checkpoint's mean-pooled, L2-normalised embeddings of every corpus text
are stored in the model (a `CosineTopK` layer), so the export searches by itself. With labelled queries
(`test_data`) the metrics are nearest-neighbour label accuracy and label recall@k.
"""

from __future__ import annotations

import os
import types

import keras
import keras_hub
import numpy as np

from apps.base import App, text_of
from apps.specs.text_embedder import Config, TextEmbedderSpec  # noqa: F401  (Config: public as apps.text_embedder.Config)
from toolkit.data import DataError
from toolkit.export.text_bert import bert_embedding_adapter
from apps.text_models import default_checkpoint
from toolkit.models.bert import BertPacker, build_embedder, build_retrieval_model, embed_texts, load_bert


def read_corpus(data, config) -> tuple:
    """`(texts, labels or None)` from a list of strings, `(texts, labels)`, a .txt file (one text a line),
    or anything `toolkit.data.text.load_text_dataset` reads (CSV, class folders, TFDS)."""
    if isinstance(data, (list, tuple)) and data and all(isinstance(t, str) for t in data):
        return list(data), None
    if (isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, str) for t in data[0])
            and not isinstance(data[1], str)):
        if len(data[0]) != len(data[1]):
            raise DataError(f"got {len(data[0])} texts but {len(data[1])} labels")
        return list(data[0]), [str(label) for label in data[1]]
    if isinstance(data, (str, os.PathLike)) and str(data).endswith(".txt"):
        if not os.path.isfile(data):
            raise DataError(f"corpus file {str(data)!r} does not exist")
        from toolkit.data.text import read_text_file  # a bad byte: DataError naming file, line, byte, --encoding

        texts = [line.strip() for line in read_text_file(data, config.encoding).split("\n") if line.strip()]
        if not texts:
            raise DataError(f"corpus file {str(data)!r} has no non-empty line")
        return texts, None
    from toolkit.data.text import load_text_dataset

    dataset = load_text_dataset(data, text_column=config.text_column, label_column=config.label_column,
                                encoding=config.encoding)
    names = dataset.class_names
    return [str(t) for t in dataset.train_texts], [names[i] for i in dataset.train_labels]


class TextEmbedderApp(TextEmbedderSpec, App):
    def load_data(self, data, config, test_data=None):
        texts, labels = read_corpus(data, config)
        if test_data is not None and labels is None:  # before the corpus is embedded, not after
            raise DataError("test_data (--test-data) needs a labelled corpus: retrieval is scored by the labels of "
                            "the neighbours found (give a CSV with a label column, class folders or (texts, labels))")
        test = self.eval_dataset(test_data, {}, config) if test_data is not None else None
        return types.SimpleNamespace(texts=texts, labels=labels, train=None, validation=None, test=test)

    def info(self, ctx) -> dict:
        data, config = ctx.data, ctx.config
        return {"corpus": data.texts, "corpus_labels": data.labels, "num_items": len(data.texts),
                "checkpoint": config.checkpoint or default_checkpoint(), "top_k": config.top_k}

    def build_model(self, ctx) -> keras.Model:
        data, config = ctx.data, ctx.config
        backbone, tokenizer = load_bert(config.checkpoint or default_checkpoint())
        length = min(int(config.sequence_length), int(backbone.max_sequence_length))
        preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=length)
        embedder = build_embedder(backbone)
        vectors = embed_texts(embedder, preprocessor, data.texts, config.batch_size)
        retrieval = build_retrieval_model(embedder, vectors, k=config.top_k)
        text = keras.Input((), dtype="string", name="text")
        packer = BertPacker(preprocessor, name="bert_packer")
        return keras.Model(text, retrieval(packer(text)), name="text_embedder")

    def fit(self, model, ctx, callbacks) -> dict:
        return {}  # the corpus was embedded into the model by build_model; no weights train

    def callbacks(self, ctx) -> list:
        return []

    def serving_adapter(self, run):
        packer = run.model.get_layer("bert_packer").preprocessor
        return bert_embedding_adapter(run.model, packer, sample_texts=run.info["corpus"][:3],
                                      corpus_texts=run.info["corpus"], model_part="retrieval")

    def eval_dataset(self, data, info, config=None):
        texts, labels = read_corpus(data, config or Config(encoding=info.get("encoding", "utf-8")))
        if labels is None:
            raise DataError("evaluating retrieval needs labelled queries (CSV with a label column, class "
                            "folders or (texts, labels))")
        return [(texts, labels)]

    def score(self, predictor, dataset, info) -> dict:
        corpus_labels = info.get("corpus_labels")
        if not corpus_labels:
            raise DataError("the corpus has no labels: retrieval metrics need a labelled corpus")
        corpus_labels = np.asarray(corpus_labels)
        hits1, hitsk, top = [], [], []
        for texts, labels in dataset:
            out = predictor({"text": list(texts)})
            found = corpus_labels[out["neighbors"]]
            hits1.extend(found[:, 0] == np.asarray(labels))
            hitsk.extend((found == np.asarray(labels)[:, None]).any(axis=1))
            top.extend(out["similarities"][:, 0])
        return {"nearest_label_accuracy": float(np.mean(hits1)),
                f"label_recall_at_{found.shape[1]}": float(np.mean(hitsk)),
                "mean_top1_similarity": float(np.mean(top)), "num_queries": len(hits1)}

    def raw_inputs(self, inputs, info) -> dict:
        inputs = [inputs] if isinstance(inputs, (str, bytes)) else list(inputs)
        texts = [t.decode("utf-8") if isinstance(t, bytes) else t for t in inputs]
        bad = [t for t in texts if not isinstance(t, str)]
        if bad:
            raise DataError(f"queries must be strings. Received: {type(bad[0]).__name__}")
        return {"text": texts}

    def summary(self, metrics) -> str:
        if not _has_metrics(metrics):
            return "  (no retrieval metrics: pass labelled queries with --test-data to score the search)"
        return super().summary(metrics)

    def format_predictions(self, outputs, inputs, top_k=None, score_threshold=None, labels=None) -> list:
        """The top neighbour and up to `top_k` neighbours (all the export returns by default) per query."""
        results = []
        for row in range(len(outputs["neighbors"])):
            neighbors = [{"rank": r + 1, "index": int(i), "score": float(s), "text": text_of(t)} for r, (i, s, t) in
                         enumerate(zip(outputs["neighbors"][row], outputs["similarities"][row],
                                       outputs["neighbor_texts"][row]))]
            results.append({"top": neighbors[0]["text"], "score": neighbors[0]["score"],
                            "neighbors": neighbors[:top_k] if top_k else neighbors})
        return results

    def embed(self, path_or_run, texts) -> np.ndarray:
        """`[n, d]` L2-normalised embeddings of `texts` from a Run or an export."""
        predictor = self.predictor(path_or_run)
        return np.asarray(predictor(self.raw_inputs(texts, {}), signature="serving_default")["embeddings"])


def _has_metrics(metrics) -> bool:
    return any(isinstance(v, (int, float)) for k, v in metrics.items() if k != "evaluated_on")


APP = TextEmbedderApp()
train = APP.train
evaluate = APP.evaluate
predict = APP.predict
embed = APP.embed
