"""U-Net builder (seed 64-128-256 / 512 variant), with a no-skip twin and pretrained encoders."""

from toolkit.models.unet.unet import build_unet, feature_pyramid, get_encoder

__all__ = ["build_unet", "feature_pyramid", "get_encoder"]
