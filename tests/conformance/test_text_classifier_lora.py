"""Conformance: text-classifier --model bert --fine-tuning lora, two tasks on one base, served. Each step in a new
process through the CLI: train task a and task b (other label names, the opposite meaning), export a as version 1
of a served model, start `toolkit serve`, then `export RUN_A --lora-adapter RUN_B/adapter.npz` into the same folder:
the running server swaps to version 2, which answers with task b's labels and task b's scores."""

import os
import time

import numpy as np
import pytest

from tests.conformance import _text, cells
from tests.conformance.processes import Served, toolkit

RENAMED = {"pos": "upbeat", "neg": "downbeat"}


@pytest.fixture(scope="module")
def tasks(data_root, tmp_path_factory, review_rows, reviews_csv, bert_checkpoint, serve_base):
    flipped = [(text, RENAMED["neg" if label == "pos" else "pos"]) for text, label in review_rows]
    csv_b = cells.text_csv(str(data_root / "reviews_flipped.csv"), flipped)
    common = ["--text-column", "review", "--label-column", "sentiment", "--batch-size", "8", "--sequence-length",
              "16", "--checkpoint", bert_checkpoint, "--fine-tuning", "lora", "--lora-rank", "2"]
    made = {}
    for name, data in (("a", reviews_csv), ("b", csv_b)):
        made[name] = cells.Family(_text.TASK, "bert", tmp_path_factory.mktemp(f"lora_{name}"),
                                  ["--data", data, *common], data, _text.INPUTS, serve_base)
    return made


def _wait_for_version(server, name, version, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {str(v["version"]): v["state"] for v in server.get(f"/v1/models/{name}")["model_version_status"]}
        if states.get(str(version)) == "AVAILABLE":
            return states
        time.sleep(0.5)
    raise AssertionError(f"version {version} of {name} not AVAILABLE after {timeout} s:\n{server.log()}")


def test_served_base_swaps_to_another_lora_task(tasks, serve_base):
    a, b = tasks["a"], tasks["b"]
    adapter_b = os.path.join(b.run_dir(), "adapter.npz")
    assert os.path.isfile(adapter_b) and os.path.isfile(os.path.join(a.run_dir(), "adapter.npz"))
    name = "support"
    output = os.path.join(serve_base, name)
    toolkit(_text.TASK, "export", a.run_dir(), "--output", output)
    server = Served(serve_base, [name], poll_interval=0.5)
    try:
        code, body = server.rest_predict(name, _text.INPUTS)
        assert code == 200, body
        assert {p["labels"] for p in body["predictions"]} <= {"pos", "neg"}
        toolkit(_text.TASK, "export", a.run_dir(), "--output", output, "--lora-adapter", adapter_b)
        _wait_for_version(server, name, 2)
        code, body = server.rest_predict(name, _text.INPUTS)
        assert code == 200, body
        expected = b.predict("run")  # task b's own run directory, in another process
        assert [p["labels"] for p in body["predictions"]] == [row["label"] for row in expected]
        np.testing.assert_allclose([max(p["scores"]) for p in body["predictions"]],
                                   [row["score"] for row in expected], atol=2e-3)
    finally:
        server.stop()
    # a missing adapter file is refused, naming it, and nothing is written
    done = toolkit(_text.TASK, "export", a.run_dir(), "--output", output, "--lora-adapter",
                   os.path.join(a.root, "missing.npz"), expect=None)
    assert done.returncode != 0 and "no such file" in done.stdout + done.stderr
    assert sorted(os.listdir(output)) == ["1", "2"]
