"""Conformance (slow): the anomaly detector's other models (vae: -ELBO score; denoising; contractive with the
autodiff Jacobian) x every verb, target and format, each step in a new process through the `toolkit` CLI."""

import pytest

from tests.conformance import cells
from tests.conformance.test_anomaly_detector import OUTPUTS, TINY

pytestmark = pytest.mark.slow
TASK = "anomaly-detector"


def _family(model):
    def build(fixture):
        folder = fixture("image_folder")
        return {"task": TASK, "train_args": ["--data", folder, *TINY, "--elbo-samples", "2"],
                "eval_data": folder, "inputs": fixture("image_inputs")}
    return build


cells.define_matrix(globals(), {m: (m, _family(m)) for m in ("vae", "denoising", "contractive")},
                    expected_outputs=OUTPUTS, metric="roc_auc", compare=("labels", "is_anomaly"))
