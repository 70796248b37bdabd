"""Vision architectures of the lecture notes: ViT, the ResNet family (with its ODE and mHC views), classic CNNs.

Names load from their submodules on first use (`toolkit.lazy`): the CNN builders (`resnet`, `classic`,
`efficientnet`) never import keras-hub, which only the ViT (`vit`) needs.
"""

from toolkit.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("DENSENET_LAYOUTS", "VGG16_BLOCKS", "bottleneck_1x1", "build_densenet", "build_inception_small",
                     "build_lenet5", "build_vgg16", "conv_norm_act", "dense_block", "inception_module",
                     "layer_types", "transition", "vgg16_parameter_count"), "classic"),
    **dict.fromkeys(("B0_BLOCKS", "build_efficientnet", "compound_scaling", "mbconv"), "efficientnet"),
    **dict.fromkeys(("ACTIVATIONS", "NORMALIZATIONS", "RESNET_LAYOUTS", "build_resnet", "build_resnet_ode",
                     "check_options", "normalization", "residual_branch", "trainable_parameters"), "resnet"),
    **dict.fromkeys(("VIT_SIZES", "build_vit", "build_vit_classifier", "vit_parameter_count"), "vit"),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
