"""Sentence embeddings and semantic search: a BERT checkpoint + a corpus -> a SavedModel that answers queries.

    from apps import text_embedder
    run = text_embedder.train(["Mars is the red planet.", "Venus is Earth's twin."], checkpoint=PATH)
    text_embedder.predict(run, ["Which planet is red?"])       # top-k corpus neighbours with cosine scores
    text_embedder.embed(run, ["any sentence"])                  # [n, d] unit vectors
    path = run.export("savedmodels/planets")   # text in; embeddings, similarities, neighbors, neighbor_texts out

"Training" indexes the corpus: the checkpoint's mean-pooled, L2-normalised embeddings of every corpus text
are stored in the model (a `CosineTopK` layer), so the export searches by itself. With labelled queries
(`test_data`) the metrics are nearest-neighbour label accuracy and label recall@k.

`retrieval="bm25"` / `"hybrid"` (`--retrieval hybrid --alpha 0.5`) also index the corpus with BM25 inside the
model (`BM25Tokenizer` + `BM25Scores`: a fixed vocabulary and a sparse term-document weight matrix), so the export
ranks by BM25 or the hybrid score by itself; `chunk_size` splits long documents into overlapping chunks (a
document scores as its best chunk). `predict(..., score_threshold=0.3)` keeps only neighbours whose cosine
similarity is at least 0.3.
"""

from __future__ import annotations

import os
import types

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from apps.base import App, text_of
from apps.results import string_inputs
from apps.specs.text_embedder import Config, TextEmbedderSpec  # noqa: F401  (Config: public as apps.text_embedder.Config)
from toolkit.data import DataError
from toolkit.export.text_bert import bert_embedding_adapter
from apps.text_models import default_checkpoint
from toolkit.models.bert import BertPacker, build_embedder, build_retrieval_model, embed_texts, load_bert
from toolkit.models.text.bm25 import BM25Index, BM25Tokenizer, chunk_corpus


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
    def validate(self, config) -> None:
        from apps.specs.text_embedder import RETRIEVAL_MODES

        if config.retrieval not in RETRIEVAL_MODES:
            raise ValueError(f"retrieval must be one of {RETRIEVAL_MODES}. Received: retrieval={config.retrieval!r}")
        if not 0.0 <= config.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1]. Received: alpha={config.alpha}")
        if config.bm25_k1 < 0 or not 0.0 <= config.bm25_b <= 1.0:
            raise ValueError(f"BM25 needs bm25_k1 >= 0 and 0 <= bm25_b <= 1. Received: bm25_k1={config.bm25_k1}, "
                             f"bm25_b={config.bm25_b}")
        if config.chunk_size < 0 or (config.chunk_size and not 0 <= config.chunk_overlap < config.chunk_size):
            raise ValueError(f"need chunk_size >= 0 and 0 <= chunk_overlap < chunk_size. Received: chunk_size="
                             f"{config.chunk_size}, chunk_overlap={config.chunk_overlap}")

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
                "checkpoint": config.checkpoint or default_checkpoint(), "top_k": config.top_k,
                "retrieval": config.retrieval, "alpha": config.alpha if config.retrieval == "hybrid" else None,
                "chunk_size": config.chunk_size, "chunk_overlap": config.chunk_overlap}

    def build_model(self, ctx) -> keras.Model:
        data, config = ctx.data, ctx.config
        backbone, tokenizer = load_bert(config.checkpoint or default_checkpoint())
        length = min(int(config.sequence_length), int(backbone.max_sequence_length))
        preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=length)
        embedder = build_embedder(backbone)
        text = keras.Input((), dtype="string", name="text")
        packer = BertPacker(preprocessor, name="bert_packer")
        if config.retrieval == "dense" and not config.chunk_size:  # the plain CosineTopK model
            vectors = embed_texts(embedder, preprocessor, data.texts, config.batch_size)
            retrieval = build_retrieval_model(embedder, vectors, k=config.top_k)
            return keras.Model(text, retrieval(packer(text)), name="text_embedder")
        chunks, doc_ids = chunk_corpus(data.texts, config.chunk_size, config.chunk_overlap)
        vectors = embed_texts(embedder, preprocessor, chunks, config.batch_size)
        bm25 = BM25Index(config.bm25_k1, config.bm25_b).fit(chunks) if config.retrieval != "dense" else None
        retrieval = build_retrieval_model(embedder, vectors, k=config.top_k, mode=config.retrieval,
                                          alpha=config.alpha, bm25_index=bm25, doc_ids=doc_ids)
        features = packer(text)
        if bm25 is not None:
            features = {**features, "term_ids": BM25Tokenizer(bm25.vocabulary, name="bm25_tokenizer")(text)}
        return keras.Model(text, retrieval(features), name="text_embedder")

    def fit(self, model, ctx, callbacks) -> dict:
        return {}  # the corpus was embedded into the model by build_model; no weights train

    def callbacks(self, ctx) -> list:
        return []

    def serving_adapter(self, run):
        packer = run.model.get_layer("bert_packer").preprocessor
        adapter = bert_embedding_adapter(run.model, packer, sample_texts=run.info["corpus"][:3],
                                         corpus_texts=run.info["corpus"], model_part="retrieval")
        adapter.metadata["retrieval"] = {k: run.info.get(k) for k in ("retrieval", "alpha", "chunk_size",
                                                                      "chunk_overlap")}
        names = {layer.name for layer in run.model.layers}
        return _with_bm25_terms(adapter, run.model.get_layer("bm25_tokenizer")) if "bm25_tokenizer" in names \
            else adapter

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
        return {"text": string_inputs(inputs, "queries")}

    def summary(self, metrics) -> str:
        if not _has_metrics(metrics):
            return "  (no retrieval metrics: pass labelled queries with --test-data to score the search)"
        return super().summary(metrics)

    def format_predictions(self, outputs, inputs, top_k=None, score_threshold=None, labels=None) -> list:
        """The top neighbour and up to `top_k` neighbours (all the export returns by default) per query;
        `score_threshold`: only neighbours with cosine similarity >= it (`top` is None when none is left).
        `score` is the cosine similarity; with bm25 / hybrid retrieval `rank_score` is what ranked them."""
        results = []
        for row in range(len(outputs["neighbors"])):
            neighbors = [{"rank": r + 1, "index": int(i), "score": float(s), "text": text_of(t)} for r, (i, s, t) in
                         enumerate(zip(outputs["neighbors"][row], outputs["similarities"][row],
                                       outputs["neighbor_texts"][row]))]
            if "scores" in outputs:
                for neighbor, rank_score in zip(neighbors, outputs["scores"][row]):
                    neighbor["rank_score"] = float(rank_score)
            if score_threshold is not None:
                neighbors = [n for n in neighbors if n["score"] >= score_threshold]
            results.append({"top": neighbors[0]["text"] if neighbors else None,
                            "score": neighbors[0]["score"] if neighbors else None,
                            "neighbors": neighbors[:top_k] if top_k else neighbors})
        return results

    def embed(self, path_or_run, texts) -> np.ndarray:
        """`[n, d]` L2-normalised embeddings of `texts` from a Run or an export."""
        predictor = self.predictor(path_or_run)
        return np.asarray(predictor(self.raw_inputs(texts, {}), signature="serving_default")["embeddings"])


def _with_bm25_terms(adapter, tokenizer):
    """Adds the BM25 `term_ids` (tokenised in the graph from the raw text) to the adapter's dense inputs."""
    base_preprocess, base_for_target = adapter.preprocess, adapter.for_target

    def preprocess(raw):
        dense, _ = base_preprocess(raw)
        dense = {**dense, "term_ids": tokenizer(raw["text"])}
        return dense, dense

    adapter.preprocess = preprocess
    adapter.dense_inputs = {**adapter.dense_inputs, "term_ids": tf.TensorSpec([None, None], tf.int32, name="term_ids")}
    adapter.metadata["input"] = {**adapter.metadata.get("input", {}),
                                 "term_ids": "int32 [batch, terms]: BM25 vocabulary ids (1-based, 0 = padding/unknown)"}
    if base_for_target is not None:
        adapter.for_target = lambda target: adapter if target != "tpu" else _with_bm25_terms(base_for_target(target),
                                                                                          tokenizer)
    return adapter


def _has_metrics(metrics) -> bool:
    return any(isinstance(v, (int, float)) for k, v in metrics.items() if k != "evaluated_on")


APP = TextEmbedderApp()
train = APP.train
evaluate = APP.evaluate
predict = APP.predict
embed = APP.embed
