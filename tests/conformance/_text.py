"""Text-classifier families shared by the two text-classifier conformance files (split for --dist loadfile)."""

from tests.conformance import cells

TASK = "text-classifier"
INPUTS = ["a fine film", "dull and boring"]


def family(model):
    def build(fixture):
        data = fixture("reviews_csv")
        extra = ["--checkpoint", fixture("bert_checkpoint")] if model == "bert" else []
        return {"task": TASK, "train_args": ["--data", data, "--text-column", "review", "--label-column",
                                             "sentiment", "--batch-size", "8", "--units", "8", "--embedding-dim", "8",
                                             "--max-tokens", "300", "--sequence-length", "16", *extra],
                "eval_data": data, "inputs": INPUTS}
    return (model, build)


def define(ns, models, extra):
    cells.define_matrix(ns, {m: family(m) for m in models}, expected_outputs=("scores", "classes", "labels"),
                        metric="accuracy", compare=("labels", "classes"), text=True, extra=extra)
