"""Conformance: image-segmenter (U-Net, image + mask folders) x every verb, target and format, each step in a
new process; the export returns a class mask at the input's size."""

from tests.conformance import cells

TASK = "image-segmenter"


def _unet(fixture):
    data = cells.segmentation_data(str(fixture("data_root") / "segmentation"))
    return {"task": TASK, "train_args": ["--data", data, "--test-data", data, "--image-size", "24x24", "--filters",
                                         "4,8", "--bottleneck", "8", "--batch-size", "4", "--validation-split", "0",
                                         "--augment", "none"],
            "eval_data": data, "inputs": cells.images_under(data)}


cells.define_matrix(globals(), {"unet": (None, _unet)}, expected_outputs=("masks",), metric="mean_iou",
                    compare=("masks",))
