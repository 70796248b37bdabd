"""HybridTopK (dense / BM25 / hybrid over chunked documents) against the numpy formulas of toolkit.models.text.bm25."""

import keras
import numpy as np
import pytest

from toolkit.models.bert.retrieval import HybridTopK, normalize
from toolkit.models.text.bm25 import doc_max, hybrid_scores


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_hybrid_top_k_matches_numpy(mode, tmp_path):
    rng = np.random.default_rng(0)
    corpus, queries = rng.normal(size=(7, 4)).astype("float32"), rng.normal(size=(3, 4)).astype("float32")
    bm25 = rng.gamma(1.0, size=(3, 7)).astype("float32")
    doc_ids = [0, 0, 1, 2, 2, 2, 3]
    layer = HybridTopK(7, 4, num_docs=4, k=3, mode=mode, alpha=0.3)
    layer.set_corpus(corpus, doc_ids)
    out = layer(queries, bm25)
    cosine = doc_max(normalize(queries) @ normalize(corpus).T, doc_ids, 4)
    sparse = doc_max(bm25, doc_ids, 4)
    expected = {"dense": cosine, "bm25": sparse, "hybrid": hybrid_scores(cosine, sparse, 0.3)}[mode]
    order = np.argsort(-expected, axis=1)[:, :3]
    np.testing.assert_array_equal(out["neighbors"].numpy(), order)
    np.testing.assert_allclose(out["scores"], np.take_along_axis(expected, order, 1), atol=1e-5)
    np.testing.assert_allclose(out["similarities"], np.take_along_axis(cosine, order, 1), atol=1e-5)
    # .keras round trip of a model holding the layer
    q, s = keras.Input((4,)), keras.Input((7,))
    model = keras.Model([q, s], layer(q, s))
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")([queries, bm25])
    np.testing.assert_array_equal(again["neighbors"], order)


def test_hybrid_top_k_errors():
    with pytest.raises(ValueError, match="retrieval mode"):
        HybridTopK(3, 2, mode="sparse")
    layer = HybridTopK(3, 2, num_docs=2, mode="bm25")
    with pytest.raises(ValueError, match="doc_ids"):
        layer.set_corpus(np.ones((3, 2)), doc_ids=[0, 1, 2])
    with pytest.raises(ValueError, match="BM25 scores"):
        layer(np.ones((1, 2), "float32"))
