"""The image-segmenter task's options and CLI facts, importable without TensorFlow (`toolkit image-segmenter --help`)."""

from __future__ import annotations

import dataclasses

from apps.config import BaseConfig, TaskSpec, option

LOSSES = ("ce", "dice", "focal", "ce+dice")  # toolkit.training.segmentation_losses.LOSSES (a test checks)


@dataclasses.dataclass
class Config(BaseConfig):
    """Image-segmenter options (every field is also a `--flag` of `toolkit image-segmenter train`)."""

    batch_size: int = option(16, "examples per batch (global, across replicas)")
    image_size: str = option("", "resize images (bilinear) and masks (nearest) to HxW, e.g. 128x128; empty keeps "
                             "the data's size (H and W must be divisible by 2**depth)")
    channels: int = option(0, "force 1 (grey) or 3 (RGB) channels; 0 keeps the data's")
    class_names: str = option("", "comma list of class names, index = class id, background first (default: the "
                              "folder's classes.txt, else background,1,2,...)")
    filters: str = option("64,128,256", "encoder widths per level (depth = count); the seed U-Net is 64,128,256")
    bottleneck: int = option(512, "bottleneck width")
    convs_per_block: int = option(2, "3x3 convolutions per encoder / decoder block")
    batch_norm: bool = option(False, "BatchNormalization after every convolution")
    dropout: float = option(0.0, "dropout in the deepest encoder block and the bottleneck")
    downsampling: str = option("max_pool", "max_pool (2x2) or conv (stride 2)", choices=("max_pool", "conv"))
    skip_connections: bool = option(True, "U-Net skips; --no-skip-connections gives the plain encoder-decoder")
    encoder: str = option("", "pretrained encoder instead of the built-in one: small_cnn, small_resnet, a "
                          "keras.applications name (MobileNetV2, ...) or a .keras file; skips come from its "
                          "intermediate feature maps")
    encoder_weights: str = option("", "weights of a keras.applications encoder: imagenet (online), a local file")
    freeze_encoder: bool = option(False, "keep the pretrained encoder's weights fixed")
    loss: str = option("ce+dice", "ce | dice | focal | ce+dice", choices=LOSSES)
    export_probabilities: bool = option(False, "exported raw signature also returns per-class probabilities at "
                                        "the input size (the dense signature always does)")
    augment: str = option("flip,zoom,translate", "joint image+mask augmentation: comma list of flip, vflip, zoom, "
                          "translate, brightness; or none")


class ImageSegmenterSpec(TaskSpec):
    name = "image-segmenter"
    description = "Semantic segmentation with a U-Net (folders of images/ + masks/, arrays, TFDS)."
    config_cls = Config


SPEC = ImageSegmenterSpec()
