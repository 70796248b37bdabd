"""BERT extractive QA: offsets, span decoding oracle, SQuAD EM/F1, training, raw-string SavedModel round trip."""

import json
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import harness
from toolkit.export.exporter import export
from toolkit.models import bert
from toolkit.models.bert import qa

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "who what where wrote is was the a letter box in by on ann bob paris rome cat sat mat ? . , ##s ##ter"
).split()

# hand-made (question, context, answer) triples
TRIPLES = [
    ("Who wrote the letter?", "The letter was written by Ann in Paris.", "Ann"),
    ("Where is the cat?", "The cat sat on the mat.", "on the mat"),
    ("Who sat on the mat?", "Bob sat on the mat, not Ann.", "Bob"),
    ("Where was the letter?", "The letter was in the box in Rome.", "in the box"),
]


@pytest.fixture(scope="module")
def tiny_qa():
    keras.utils.set_random_seed(0)
    backbone, tokenizer = bert.tiny_bert(VOCAB, hidden_dim=16, num_heads=2, max_sequence_length=48, dropout=0.0)
    return backbone, tokenizer, qa.QAPacker(tokenizer, 40)


def test_offsets_match_keras_hub_tokens_and_slice_the_text(tiny_qa):
    _, tokenizer, packer = tiny_qa
    texts = ["The letter, by Ann.", "  Bobs   sat?  ", "Café Rome", "Paris"]
    ids, starts, ends = packer.tokenize_with_offsets(tf.constant(texts))
    reference = tokenizer(tf.constant(texts))
    assert ids.to_list() == [list(map(int, r)) for r in (reference.to_list() if hasattr(reference, "to_list")
                                                          else reference)]
    pieces = [[t.encode()[a:b].decode() for a, b in zip(s, e)] for t, s, e in zip(texts, starts.to_list(),
                                                                                  ends.to_list())]
    assert pieces[0] == ["The", "letter", ",", "by", "Ann", "."]
    assert pieces[1] == ["Bob", "s", "sat", "?"]  # "bob" + "##s": piece offsets inside the word
    assert pieces[2][0] == "Café" and tokenizer.id_to_token(ids.to_list()[2][0]) == "[UNK]"
    features, c_starts, _ = packer.pack(tf.constant(["who?"]), tf.constant(["Ann sat"]))
    assert features["token_ids"].numpy()[0, :6].tolist() == [2, VOCAB.index("who"), VOCAB.index("?"), 3,
                                                             VOCAB.index("ann"), VOCAB.index("sat")]
    assert features["segment_ids"].numpy()[0, :7].tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert c_starts.numpy()[0, :7].tolist() == [-1, -1, -1, -1, 0, 4, -1]


def test_decode_spans_matches_brute_force():
    rng = np.random.default_rng(0)
    start, end = rng.normal(size=(6, 12)).astype("float32"), rng.normal(size=(6, 12)).astype("float32")
    valid = rng.uniform(size=(6, 12)) > 0.3
    valid[:, 0] = True
    for max_len in (1, 3, 12):
        got = [t.numpy() for t in qa.decode_spans(start, end, valid, max_len)]
        for b in range(6):
            best = max((start[b, i] + end[b, j], i, j) for i in range(12) for j in range(i, min(12, i + max_len))
                       if valid[b, i] and valid[b, j])
            assert (got[0][b], got[1][b]) == best[1:] and got[2][b] == pytest.approx(best[0], abs=1e-5)
    # hand-set logits: the best pair overall (0 -> 4) is longer than max_answer_length = 3
    s = np.array([[9.0, 0.0, 2.0, 0.0, 0.0]], "float32")
    e = np.array([[0.0, 0.0, 0.0, 3.0, 8.0]], "float32")
    got = qa.decode_spans(s, e, np.ones((1, 5), bool), max_answer_length=3)
    assert [int(got[0][0]), int(got[1][0])] == [2, 4]  # 2 + 8 = 10 beats 0 -> 2 (9 + 0) and 0 -> 3 is too long
    with pytest.raises(ValueError, match="max_answer_length"):
        qa.decode_spans(s, e, np.ones((1, 5), bool), max_answer_length=0)


def test_squad_exact_match_and_f1():
    assert qa.normalize_answer("The  Eiffel-Tower, in Paris!") == "eiffeltower in paris"
    assert qa.exact_match("an apple", "Apple.") == 1.0 and qa.exact_match("apples", "apple") == 0.0
    # prediction "the cat sat on" vs truth "cat on the mat": shared {cat, on} -> P 2/3, R 2/3 -> F1 2/3
    assert qa.f1_score("the cat sat on", "cat on the mat") == pytest.approx(2 / 3)
    assert qa.f1_score("Rome", "Paris") == 0.0 and qa.f1_score("the", "a") == 1.0  # both empty after norm
    scores = qa.squad_scores(["Ann", "on a mat", "Rome"], [["Ann", "Ann Smith"], "on the mat", "in Paris"])
    assert scores == {"exact_match": pytest.approx(2 / 3), "f1": pytest.approx(2 / 3)}


@pytest.mark.slow  # ~150 s wall at load average 10 on the shared 2-core machine (12 steps + tracing)
def test_answer_spans_training_and_in_process_answers(tiny_qa):
    backbone, _, packer = tiny_qa
    questions, contexts, answers = map(list, zip(*TRIPLES))
    first, last = qa.answer_token_spans(packer, questions, contexts, answers)
    features, starts, ends = packer.pack(tf.constant(questions), tf.constant(contexts))
    for row, answer in enumerate(answers):
        begin, finish = starts.numpy()[row, first[row]], ends.numpy()[row, last[row]]
        assert contexts[row].encode()[begin:finish].decode() == answer
    with pytest.raises(ValueError, match="not in its context"):
        qa.answer_token_spans(packer, ["q"], ["Ann sat"], ["Bob"])
    model = qa.build_question_answerer(backbone, dropout=0.0)
    history = qa.fit_question_answerer(model, packer, questions * 4, contexts * 4, answers * 4, epochs=6,
                                       batch_size=8, learning_rate=5e-3, warmup_fraction=0.0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    results = qa.answer_questions(model, packer, questions, contexts, max_answer_length=5)
    for result, context in zip(results, contexts):
        assert context[result["start"]:result["end"]] == result["answer"]
    scores = qa.squad_scores([r["answer"] for r in results], answers)
    assert scores["f1"] >= scores["exact_match"] >= 0.5  # memorised the hand-made set (most of it)


@pytest.mark.slow  # ~137 s wall at load average 9 (export + parity reload + a fresh TF process)
def test_raw_string_savedmodel_round_trip_in_a_fresh_process(tmp_path, tiny_qa):
    backbone, _, packer = tiny_qa
    model = qa.build_question_answerer(backbone, dropout=0.0)
    questions, contexts, _ = map(list, zip(*TRIPLES))
    contexts[1] = "The café cat sat on the mat."  # non-ASCII context: character offsets differ from bytes
    adapter = qa.qa_adapter(model, packer, max_answer_length=4, sample_questions=questions, sample_contexts=contexts)
    live = adapter.run_raw(model, {"question": tf.constant(questions), "context": tf.constant(contexts)})
    path = export(model, str(tmp_path / "qa"), adapter=adapter)
    code = (
        "import json, sys, tensorflow_text\n"
        "from toolkit.export import load\n"
        "questions, contexts = json.loads(sys.argv[2]), json.loads(sys.argv[3])\n"
        "predictor = load(sys.argv[1])\n"
        "out = predictor({'question': questions, 'context': contexts})\n"
        "print(json.dumps({'answer': [a.decode() for a in out['answer']], 'start': out['start'].tolist(),\n"
        "                  'end': out['end'].tolist(), 'score': out['score'].tolist(),\n"
        "                  'task': predictor.metadata['task']}))\n"
    )
    done = harness.run_python(code, path, json.dumps(questions), json.dumps(contexts))
    fresh = json.loads(done.stdout.strip().splitlines()[-1])
    assert fresh["task"] == "question_answering"
    assert fresh["answer"] == [a.decode() for a in live["answer"].numpy()]
    np.testing.assert_allclose(fresh["score"], live["score"].numpy(), atol=1e-4)
    for answer, start, end, context in zip(fresh["answer"], fresh["start"], fresh["end"], contexts):
        assert answer and context[start:end] == answer  # character offsets slice the context to the answer
    assert fresh["end"][1] - fresh["start"][1] == len(fresh["answer"][1])
