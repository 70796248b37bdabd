"""The image-segmenter task's options and CLI facts, importable without TensorFlow (`toolkit image-segmenter --help`)."""

from __future__ import annotations

import dataclasses

from apps.config import BaseConfig, TaskSpec, option
from toolkit.training.lr_schedules import SCHEDULES

LOSSES = ("ce", "dice", "focal", "ce+dice")  # toolkit.training.segmentation_losses.LOSSES (a test checks)


@dataclasses.dataclass
class Config(BaseConfig):
    """Image-segmenter options (every field is also a `--flag` of `toolkit image-segmenter train`)."""

    batch_size: int = option(16, "examples per batch (global, across replicas); unless given, smaller (down to 4) "
                             "when the training images would make fewer than 16 steps per epoch")
    learning_rate: float = option(2e-3, "learning rate (2e-3: Adam on the batch-normalised default U-Net; the notes' "
                                  "SGD start is 1e-1)")
    lr_schedule: str = option("cosine", "constant | step | exponential | cosine (default here: decays to 0 over the "
                              "epochs; held-out mIoU 0.78 vs 0.72 constant on 600 digit scenes) | warmup-cosine | "
                              "cyclical | plateau (see the other apps' --help)", choices=SCHEDULES)
    image_size: str = option("", "resize images (bilinear) and masks (nearest) to HxW, e.g. 128x128; empty keeps "
                             "the data's size (H and W must be divisible by 2**depth)")
    channels: int = option(0, "force 1 (grey) or 3 (RGB) channels; 0 keeps the data's")
    class_names: str = option("", "comma list of class names, index = class id, background first (default: the "
                              "folder's classes.txt, else background,1,2,...)")
    filters: str = option("auto", "encoder widths per level (depth = count), or auto: by the number of training "
                          "images, 16,32,64 under 2,000, 32,64,128 under 20,000, else 64,128,256 (the seed U-Net: "
                          "--filters 64,128,256 --bottleneck 512)")
    bottleneck: int = option(0, "bottleneck width; 0: twice the deepest encoder width (128 for 16,32,64)")
    convs_per_block: int = option(2, "3x3 convolutions per encoder / decoder block")
    batch_norm: bool = option(True, "BatchNormalization after every convolution (--no-batch-norm: the seed's plain "
                              "convolutions)")
    norm: str = option("", "normalisation after every convolution: batch | group (up to 32 groups) | layer (over "
                       "H, W, C) | none; empty: --batch-norm's choice (batch, or none with --no-batch-norm)")
    activation: str = option("relu", "activation after every convolution: relu | elu | gelu | selu | swish | tanh")
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
