"""Conformance: image-classifier with the notes' backbones (issue 17) x train / export / TF-only load / ...

ResNet-18 and ViT-tiny are extra families: train, cpu export and the TF-only load run in the fast set, every
other cell (tpu XLA export, evaluate, predict, serve, formats) in the slow set. Their variants (ODE-tied, mHC,
MoE) are in `test_image_classifier_backbone_variants.py`, all slow.
"""

from tests.conformance import cells

TASK = "image-classifier"
TINY = ["--image-size", "32x32", "--width", "4", "--dense-units", "8", "--batch-size", "4"]


def backbone_family(backbone):
    def build(fixture):
        folder = fixture("image_folder")
        return {"task": TASK, "train_args": ["--data", folder, "--backbone", backbone, *TINY],
                "eval_data": folder, "inputs": fixture("image_inputs")}
    return build


FAMILIES = ("resnet18", "vit_tiny")
cells.define_matrix(globals(), {name: (None, backbone_family(name)) for name in FAMILIES},
                    expected_outputs=("classes", "labels", "scores"), metric="accuracy", compare=("labels", "classes"),
                    extra=FAMILIES)
