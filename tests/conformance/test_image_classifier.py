"""Conformance: image-classifier (small_cnn) x train / evaluate / export cpu,gpu,tpu x formats / predict / TF-only
load / saved_model_cli / serve (REST + gRPC), each step in a new process through the `toolkit` CLI."""

from tests.conformance import cells

TASK = "image-classifier"


def _small_cnn(fixture):
    folder = fixture("image_folder")
    return {"task": TASK, "train_args": ["--data", folder, "--backbone", "small_cnn", "--image-size", "32x32",
                                         "--width", "4", "--dense-units", "8", "--batch-size", "4"],
            "eval_data": folder, "inputs": fixture("image_inputs")}


cells.define_matrix(globals(), {"small_cnn": (None, _small_cnn)}, expected_outputs=("classes", "labels", "scores"),
                    metric="accuracy", compare=("labels", "classes"), fast_formats=True)
