"""Conformance: text-generator (a tiny character LM on a .txt file) x every verb, target and format, each step in
a new process. The export generates in-graph, so the TF-only process calls serving_default with prompt strings.

Only train, export-cpu and tf-only-cpu run by default (`extra`: the family's other cells are slow-marked, to keep
the default suite's budget); `-m slow` runs evaluate / predict / tpu / serve (REST, gRPC) too.
"""

from tests.conformance import cells

TASK = "text-generator"
TEXT = "the cat sat on the mat. the dog sat on the log. " * 12


def _char(fixture):
    path = fixture("data_root") / "generator_corpus.txt"
    if not path.exists():
        path.write_text(TEXT)
    return {"task": TASK, "train_args": ["--data", str(path), "--sequence-length", "16", "--num-layers", "1",
                                         "--hidden-dim", "16", "--num-heads", "2", "--batch-size", "16",
                                         "--generate-tokens", "6"],
            "eval_data": str(path), "inputs": ["the c", "a dog "]}


# text is seeded sampling (the same prompts and batch give the same text on every path); cross_entropy is exact
cells.define_matrix(globals(), {"char": (None, _char)}, expected_outputs=("text", "token_ids"),
                    metric="cross_entropy", compare=("text",), text=True, extra=("char",))
