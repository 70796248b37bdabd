"""Raw-string SavedModels of BERT models: parity, sentence pairs, tpu target, embeddings + in-graph search."""

import numpy as np
import pytest

from toolkit.export import function_has_xla, load
from toolkit.export.exporter import export
from toolkit.export.text_bert import (
    bert_classification_adapter,
    bert_embedding_adapter,
    bert_token_classification_adapter,
)
from toolkit.models import bert

TEXTS = ["the cat sat on the mat", "good film", "the plot was very dull and not fun ."]


def test_classifier_pair_export_cpu_and_tpu(tmp_path, tiny):
    backbone, _, preprocessor = tiny
    model = bert.build_text_classifier(backbone, 2)
    adapter = bert_classification_adapter(model, preprocessor, ["neg", "pos"], pair=True)
    live = bert.predict_texts(model, preprocessor, (TEXTS, list(reversed(TEXTS))))
    for target in ("cpu", "tpu"):
        path = export(model, str(tmp_path / "pair"), target=target, adapter=adapter, batch_size=4)
        predictor = load(path)
        assert predictor.metadata["requires"] == ["tensorflow_text"]
        out = predictor({"text": TEXTS, "text_pair": list(reversed(TEXTS))})
        np.testing.assert_allclose(out["scores"], live, atol=1e-5)
        assert [l.decode() for l in out["labels"]] == [["neg", "pos"][i] for i in live.argmax(1)]
        dense = predictor.metadata["signatures"]["serving_dense"]["token_ids"]["shape"]
        assert dense == ([None, None] if target == "cpu" else [4, 32])  # tpu: fixed batch and length
    assert function_has_xla(path)


def test_token_classifier_export_aligns_tokens_and_tags(tmp_path, tiny):
    backbone, _, preprocessor = tiny
    tagger = bert.build_token_classifier(backbone, num_tags=3)
    names = ["O", "B-X", "I-X"]
    texts = ["good film", "the cat sat on the mat", "zebra"]
    path = export(tagger, str(tmp_path / "tags"), adapter=bert_token_classification_adapter(tagger, preprocessor,
                                                                                           names))
    out = load(path)(texts)
    live = bert.predict_texts(tagger, preprocessor, texts)  # padded per batch, like the signature
    np.testing.assert_allclose(out["scores"], live, atol=1e-5)
    assert [t.decode() for t in out["tokens"][0][:5]] == ["[CLS]", "good", "film", "[SEP]", ""]
    assert [t.decode() for t in out["tokens"][2][:3]] == ["[CLS]", "[UNK]", "[SEP]"]
    real = out["tokens"] != b""
    assert (out["classes"][real] == live.argmax(-1)[real]).all() and (out["classes"][~real] == -1).all()
    assert [l.decode() for l in out["labels"][0][:4]] == [names[i] for i in live[0].argmax(-1)[:4]]
    assert out["labels"][0][4] == b"" and load(path).metadata["tags"] == names


def test_embedder_export_with_search(tmp_path, tiny):
    backbone, _, preprocessor = tiny
    embedder = bert.build_embedder(backbone)
    corpus = ["the cat sat on the mat", "a dog", "great movie", "awful film"]
    vectors = bert.embed_texts(embedder, preprocessor, corpus)
    model = bert.build_retrieval_model(embedder, vectors, k=2)
    path = export(model, str(tmp_path / "emb"), adapter=bert_embedding_adapter(model, preprocessor,
                                                                              corpus_texts=corpus))
    out = load(path)(corpus)
    np.testing.assert_allclose(out["embeddings"], vectors, atol=1e-5)
    assert out["neighbors"][:, 0].tolist() == [0, 1, 2, 3]  # every corpus text finds itself first
    np.testing.assert_allclose(out["similarities"][:, 0], 1.0, atol=1e-5)
    assert [t.decode() for t in out["neighbor_texts"][:, 0]] == corpus


def test_index_and_top_k_layer(tmp_path):
    index = bert.EmbeddingIndex(lambda texts: np.array([[len(t), 1.0] for t in texts], "float32"))
    index.add(["ab", "abcd", "a"], metadata=[1, 2, 3])
    index.add(["x"], vectors=[[0.0, 1.0]])
    hits = index.search("abc", k=2)[0]
    assert [h["text"] for h in hits] == ["abcd", "ab"] and hits[0]["metadata"] == 2
    assert hits[0]["score"] == pytest.approx((3 * 4 + 1) / np.sqrt(10 * 17), abs=1e-6)
    restored = bert.EmbeddingIndex.load(index.save(str(tmp_path / "idx")), index.embed)
    assert restored.search("abc", k=2) == index.search("abc", k=2)
    layer = bert.CosineTopK(num_items=4, dim=2, k=2)
    layer.set_corpus(index.vectors)
    scores, ids = layer(np.array([[3.0, 1.0]], "float32"))
    want_scores, want_ids = index.search_vectors([[3.0, 1.0]], k=2)
    assert ids.numpy().tolist() == want_ids.tolist()
    np.testing.assert_allclose(scores.numpy(), want_scores, atol=1e-6)
    with pytest.raises(ValueError, match="empty"):
        bert.EmbeddingIndex(index.embed).search("a")
