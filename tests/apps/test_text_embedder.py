"""text-embedder app on a tiny random BERT saved as a local keras-hub preset (offline)."""

import json

import keras
import numpy as np
import pytest

from apps import cli, text_embedder
from toolkit.data.images import DataError
from toolkit.models import bert

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + "the a cat dog sat on mat good bad film movie".split()
CORPUS = (["the cat sat on the mat", "a dog sat", "good film", "bad movie"], ["animal", "animal", "film", "film"])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    keras.utils.set_random_seed(0)
    backbone, tokenizer = bert.tiny_bert(VOCAB, hidden_dim=16, num_heads=2, max_sequence_length=32)
    preset = str(tmp_path_factory.mktemp("preset") / "tiny")
    backbone.save_to_preset(preset)
    tokenizer.save_to_preset(preset)
    return text_embedder.train(CORPUS, checkpoint=preset, top_k=2, sequence_length=16,
                               run_dir=str(tmp_path_factory.mktemp("runs")), test_data=CORPUS)


def test_train_indexes_corpus_and_scores(run):
    # querying with the corpus itself: every text's nearest neighbour is itself, so its own label
    assert run.metrics["nearest_label_accuracy"] == 1.0 and run.metrics["num_queries"] == 4
    assert run.metrics["mean_top1_similarity"] == pytest.approx(1.0, abs=1e-5)
    assert run.info["corpus"] == CORPUS[0]
    top = text_embedder.predict(run, ["good film", "the cat sat on the mat"])
    assert [p["top"] for p in top] == ["good film", "the cat sat on the mat"]
    assert len(top[0]["neighbors"]) == 2


def test_export_reload_and_cli(run, tmp_path, capsys):
    vectors = text_embedder.embed(run, CORPUS[0])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    path = run.export(str(tmp_path / "emb"))
    np.testing.assert_allclose(text_embedder.embed(path, CORPUS[0]), vectors, atol=1e-5)
    assert text_embedder.evaluate(path, CORPUS)["nearest_label_accuracy"] == 1.0
    reopened = text_embedder.APP.load_run(run.run_dir)
    np.testing.assert_allclose(text_embedder.embed(reopened, CORPUS[0]), vectors, atol=1e-5)
    assert cli.main(["text-embedder", "predict", path, "bad movie", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["top"] == "bad movie"
    with pytest.raises(DataError, match="labelled"):
        text_embedder.evaluate(path, ["no labels"])


def test_help_lists_only_options_that_apply_and_unlabelled_test_data_fails_first(capsys, tmp_path):
    from apps import cli, text_embedder

    with pytest.raises(SystemExit):
        cli.main(["text-embedder", "train", "--help"])
    text = capsys.readouterr().out
    assert "--top-k" in text and "--checkpoint" in text
    assert "--epochs" not in text and "--learning-rate" not in text and "--validation-split" not in text
    with pytest.raises(DataError, match=r"--test-data\) needs a labelled corpus"):
        text_embedder.train(["an unlabelled line", "another one"], test_data=(["q"], ["x"]),
                            run_dir=str(tmp_path), checkpoint=str(tmp_path / "never-loaded"))
    assert "no retrieval metrics" in text_embedder.APP.summary({})


LONG = (["the cat sat on the mat and the dog sat on the cat", "good film good movie", "bad movie bad film",
         "a dog"], ["animal", "film", "film", "animal"])


@pytest.mark.parametrize("retrieval,export", [("hybrid", False), pytest.param("bm25", True, marks=pytest.mark.slow),
                                               pytest.param("hybrid", True, marks=pytest.mark.slow)])
def test_bm25_and_hybrid_retrieval(retrieval, export, tmp_path):
    """Rankings equal the numpy BM25 / hybrid formulas over chunked documents, from the Run and (slow) the export."""
    from toolkit.models.text.bm25 import BM25Index, chunk_corpus, doc_max, hybrid_scores

    keras.utils.set_random_seed(0)
    backbone, tokenizer = bert.tiny_bert(VOCAB, hidden_dim=16, num_heads=2, max_sequence_length=32)
    preset = str(tmp_path / "tiny")
    backbone.save_to_preset(preset)
    tokenizer.save_to_preset(preset)
    run = text_embedder.train(LONG, checkpoint=preset, top_k=3, sequence_length=16, retrieval=retrieval, alpha=0.3,
                              chunk_size=4, chunk_overlap=1, run_dir=str(tmp_path / "runs"))
    queries = ["dog on the mat", "bad film", "movie"]
    path = run.export(str(tmp_path / "export")) if export else run
    chunks, doc_ids = chunk_corpus(LONG[0], 4, 1)
    sparse = doc_max(BM25Index().fit(chunks).scores(queries), doc_ids, 4)
    cosine = doc_max(text_embedder.embed(path, queries) @ text_embedder.embed(path, chunks).T, doc_ids, 4)
    expected = sparse if retrieval == "bm25" else hybrid_scores(cosine, sparse, 0.3)
    for source in {id(s): s for s in (run, path)}.values():
        found = text_embedder.predict(source, queries)
        for row, result in enumerate(found):
            ranked = [n["index"] for n in result["neighbors"]]
            np.testing.assert_allclose([n["rank_score"] for n in result["neighbors"]],
                                       expected[row, ranked], rtol=1e-4, atol=1e-5)
            assert expected[row, ranked[0]] == pytest.approx(expected[row].max(), abs=1e-5)
            np.testing.assert_allclose([n["score"] for n in result["neighbors"]], cosine[row, ranked], atol=1e-4)
    assert found[1]["top"] in ("bad movie bad film", "good film good movie")
    kept = text_embedder.predict(path, queries, score_threshold=0.99)  # cosine threshold: few or none survive
    assert all(n["score"] >= 0.99 for r in kept for n in r["neighbors"])
    with pytest.raises(ValueError, match="retrieval must be one of"):
        text_embedder.train(LONG, checkpoint=preset, retrieval="sparse", run_dir=str(tmp_path / "bad"))
