"""Conformance: vae (conv) on a real digit image folder x every verb, target and format, each step in a new
process."""

from tests.conformance import cells

TASK = "vae"


def _conv(fixture):
    folder = fixture("image_folder")
    return {"task": TASK, "train_args": ["--data", folder, "--image-size", "16x16", "--latent-dim", "2", "--width",
                                         "4", "--hidden", "8", "--batch-size", "4"],
            "eval_data": folder, "inputs": fixture("image_inputs")}


# kl is closed-form from mu / log_var (deterministic); neg_elbo samples z
cells.define_matrix(globals(), {"conv": (None, _conv)}, expected_outputs=("mu", "log_var"), metric="kl", compare=())
