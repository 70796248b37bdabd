"""Conformance: object-detector --model yolo (COCO JSON data) and --model ssd (YOLO txt folder) x every verb,
target and format, each step in a new process (NMS inside the exported graph)."""

from tests.conformance import cells

TASK = "object-detector"
TINY = ["--image-size", "32x32", "--width", "4", "--batch-size", "4", "--validation-split", "0", "--repeat", "1",
        "--augment", "none"]


def _detector(model, fmt, extra):
    def build(fixture):
        data = cells.detection_data(str(fixture("data_root") / f"detection-{fmt}"), fmt)
        return {"task": TASK, "train_args": ["--data", data, "--format", fmt, *TINY, *extra], "eval_data": data,
                "inputs": cells.images_under(data)}
    return (model, build)


cells.define_matrix(globals(), {"yolo": _detector("yolo", "coco", ["--anchors", "2"]),
                                "ssd": _detector("ssd", "yolo", ["--ssd-levels", "2"])},
                    expected_outputs=("boxes", "scores", "classes", "labels", "num_detections"), metric="map_50",
                    compare=("num_detections",))
