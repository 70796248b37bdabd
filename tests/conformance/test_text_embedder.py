"""Conformance: text-embedder (a tiny local BERT preset, real review sentences in a CSV) x every verb, target
and format, each step in a new process; the TF-only loader imports tensorflow + tensorflow_text only."""

from tests.conformance import cells

TASK = "text-embedder"


def _bert(fixture):
    rows = fixture("review_rows")
    data = cells.text_csv(str(fixture("data_root") / "corpus.csv"), rows, "text", "label")
    return {"task": TASK, "train_args": ["--data", data, "--checkpoint", fixture("bert_checkpoint"),
                                         "--sequence-length", "16", "--top-k", "2"],
            "eval_data": data, "inputs": ["a fine film", "dull and boring"]}


cells.define_matrix(globals(), {"bert": (None, _bert)}, expected_outputs=("embeddings",),
                    metric="nearest_label_accuracy", compare=(), text=True)
