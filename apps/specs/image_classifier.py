"""The image-classifier task's options and CLI facts, importable without TensorFlow (`toolkit image-classifier --help`)."""

from __future__ import annotations

import dataclasses

from apps.config import BaseConfig, TaskSpec, option

TRAINING_MODES = ("auto", "scratch", "head", "fine-tune")


@dataclasses.dataclass
class Config(BaseConfig):
    """Image-classifier options (every field is also a `--flag` of `toolkit image-classifier train`)."""

    batch_size: int = option(64, "examples per batch (global, across replicas); unless given, smaller (down to 4) "
                             "when the training images would make fewer than 16 steps per epoch")
    backbone: str = option("small_cnn", "small_cnn | small_resnet | the notes' vision backbones (resnet18, "
                           "resnet34, resnet50, resnet18_preact, resnet18_mhc, resnet_ode, vit_tiny, vit_tiny_moe, "
                           "vit_tiny_mhc, vit_base; classic: lenet5, vgg16, inception_small, densenet_small, "
                           "efficientnet_b0, efficientnet_phi1) | a keras.applications name (MobileNet, ...) | a "
                           ".keras file")
    norm: str = option("", "normalisation of the built-in CNN backbones (not ViT / keras.applications): batch | "
                       "group | layer | none; empty: the backbone's own (batch; none for lenet5 and vgg16)")
    activation: str = option("", "activation of the built-in CNN backbones: relu | elu | gelu | selu | swish | "
                             "tanh; empty: the backbone's own (relu; tanh for lenet5, swish for efficientnet)")
    backbone_side: int = option(0, "resize the input inside the graph to this side for the backbone (e.g. 96 or "
                                "224 for an ImageNet net fed 28x28 images); 0: the data's size")
    head_experts: int = option(0, "0: a Dense hidden layer in the head; N: a Mixture-of-Experts head of N experts")
    weights: str = option("", "backbone weights for keras.applications: imagenet (online), a local file, or empty")
    width: int = option(32, "base width (filters) of the built-in backbones")
    image_size: str = option("", "resize images to HxW (e.g. 96x96); empty keeps the data's size")
    channels: int = option(0, "force 1 (grey) or 3 (RGB) channels; 0 keeps the data's")
    training: str = option("auto", "scratch: train everything; head: frozen backbone (feature extraction); "
                           "fine-tune: head then top layers; auto: by the training images, the notes' table, for a "
                           "pretrained backbone (--weights or a .keras file): < 1K head, 1K-10K fine-tune top "
                           "layers, 10K-100K fine-tune all layers (small rate), > 100K scratch (all layers from the "
                           "start); scratch without pretrained weights. Prints its choice and why",
                           choices=TRAINING_MODES)
    lr_multipliers: str = option("", "discriminative learning rates: comma list of rate multipliers for the "
                                 "backbone's layers split into that many groups, first (earliest) to last; the "
                                 "head keeps 1.0 (e.g. 0.1,0.3,1.0; ULMFiT's decay 2.6 over 3 groups is "
                                 "0.15,0.38,1.0); empty: one rate")
    fine_tune_layers: int = option(20, "backbone layers unfrozen in phase 2 (-1: all); BatchNorm stays frozen")
    fine_tune_epochs: int = option(5, "epochs of phase 2")
    fine_tune_learning_rate: float = option(1e-5, "learning rate of phase 2")
    dense_units: int = option(256, "units of the head's hidden Dense layer")
    dropout: float = option(0.5, "dropout before the output layer")
    l2: float = option(0.0, "L2 weight on every kernel (biases are never regularised)")
    label_smoothing: float = option(0.0, "label smoothing epsilon")
    lr_schedule: str = option("constant", "constant | cyclical (triangular between lr/10 and lr, or --lr-range) | "
                              "cosine",
                              choices=("constant", "cyclical", "cosine"))
    mc_samples: int = option(0, "MC dropout (F3:4979-4983): T > 0 adds an `mc_dropout` signature to exports: encoded "
                             "images -> mean and variance of the class probabilities over T passes with dropout on "
                             "(BatchNorm in inference mode; fixed seed); `toolkit predict --mc-samples T` calls it; "
                             "0: none")
    augment: str = option("flip,translate", "comma list of flip, translate, brightness, contrast; or none")
    strict: bool = option(False, "fail on an unreadable image instead of skipping it with a warning")


class ImageClassifierSpec(TaskSpec):
    name = "image-classifier"
    description = "Image classification with transfer learning (folder of class sub-folders, arrays, TFDS)."
    config_cls = Config


SPEC = ImageClassifierSpec()
