"""Conformance: anomaly-detector (conv autoencoder) on a real digit image folder ('zero' normal, 'one' held out as the
anomaly) x train / evaluate / export cpu,gpu,tpu x formats / predict / TF-only load / saved_model_cli / serve (REST +
gRPC), each step in a new process through the `toolkit` CLI. The other models are in
test_anomaly_detector_models.py (slow)."""

from tests.conformance import cells

TASK = "anomaly-detector"
OUTPUTS = ("score", "is_anomaly", "threshold", "labels")
TINY = ["--image-size", "16x16", "--latent-dim", "2", "--width", "4", "--hidden", "8", "--batch-size", "4",
        "--normal-classes", "zero", "--validation-split", "0.34"]


def _autoencoder(fixture):
    folder = fixture("image_folder")
    return {"task": TASK, "train_args": ["--data", folder, *TINY], "eval_data": folder,
            "inputs": fixture("image_inputs")}


# roc_auc of the held-out normal 'zero' vs anomalous 'one' images: deterministic (no noise at inference)
cells.define_matrix(globals(), {"autoencoder": (None, _autoencoder)}, expected_outputs=OUTPUTS, metric="roc_auc",
                    compare=("labels", "is_anomaly"))
