"""Model inspection: filters, occlusion, top-k images, gradient ascent, Grad-CAM, reconstruction, FGSM,
style transfer. Layer statistics live in `toolkit.inspect.statistics`."""

from toolkit.inspect.adversarial import fgsm, iterated_fgsm, robustness_curve
from toolkit.inspect.common import load_model, tap_model
from toolkit.inspect.style import gram_matrix, style_transfer, vgg16_trunk
from toolkit.inspect.visualize import (
    first_layer_filters, grad_cam, gradient_ascent, occlusion_map, reconstruct, top_activating, total_variation,
)

__all__ = [
    "fgsm", "first_layer_filters", "grad_cam", "gradient_ascent", "gram_matrix", "iterated_fgsm", "load_model",
    "occlusion_map", "reconstruct", "robustness_curve", "style_transfer", "tap_model", "top_activating",
    "total_variation", "vgg16_trunk",
]
