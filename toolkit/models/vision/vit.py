"""Vision Transformer (SEED_CATALOGUE.md section 7, F3:14398-14459): patches -> [CLS] + positions -> L encoders.

N = HW / P^2 patches, each flattened to P^2 C values and projected to D: a stride-P, P x P convolution is exactly
that linear map. A learnable [CLS] token is prepended and learned position embeddings added (N + 1 of them), then L
pre-norm encoder layers (x + MHA(LN(x)), x + MLP(LN(x)), GELU) and a final LayerNorm; the classifier head reads z0.
The plain encoder layer is keras-hub's `TransformerEncoder(normalize_first=True)`; the MoE and mHC variants
compose keras' `MultiHeadAttention` by hand, because `TransformerEncoder` fixes its FFN and its residual adds.
"""

from __future__ import annotations

import keras
import keras_hub
from keras import ops

from toolkit.layers import ClassToken, HyperConnection, MixtureOfExperts

# The notes' sizes (F3:14444-14459): layers, hidden D, MLP, heads; "tiny" is ours, sized to train on a CPU.
VIT_SIZES = {
    "tiny": {"num_layers": 4, "hidden_dim": 64, "mlp_dim": 256, "num_heads": 4},
    "base": {"num_layers": 12, "hidden_dim": 768, "mlp_dim": 3072, "num_heads": 12},
    "large": {"num_layers": 24, "hidden_dim": 1024, "mlp_dim": 4096, "num_heads": 16},
    "huge": {"num_layers": 32, "hidden_dim": 1280, "mlp_dim": 5120, "num_heads": 16},
}
OUTPUTS = ("cls", "grid", "tokens")
LAYER_NORM_EPSILON = 1e-6  # ViT's (keras-hub's ViTBackbone uses the same)


def build_vit(input_shape, patch_size: int = 16, num_layers: int = 12, hidden_dim: int = 768, mlp_dim: int = 3072,
              num_heads: int = 12, dropout: float = 0.0, output: str = "cls", ffn: str = "dense",
              num_experts: int = 4, top_k: int = 2, moe_every: int = 2, residual: str = "add", num_streams: int = 4,
              name: str = "vit") -> keras.Model:
    """Builds a ViT encoder mapping images `[B, H, W, C]` to z0, a patch grid or all tokens.

    Args:
        input_shape: `(H, W, C)`; H and W divisible by `patch_size`.
        patch_size: P (the notes' /16, /32, /14).
        num_layers, hidden_dim, mlp_dim, num_heads: L, D, MLP size, heads (see `VIT_SIZES`).
        dropout: dropout in the encoder layers.
        output: `"cls"` z0 after the final LayerNorm `[B, D]` (what the notes' head reads), `"grid"` the patch
            tokens as a feature map `[B, H/P, W/P, D]` (for detectors and pyramid consumers), `"tokens"` all
            `[B, N + 1, D]`.
        ffn: `"dense"` (the MLP) or `"moe"`: every `moe_every`-th layer's MLP is a `MixtureOfExperts` of
            `num_experts` MLPs with `top_k` routing (V-MoE's every-other-layer placement).
        residual: `"add"` (x + F(x)) or `"mhc"`: `num_streams` residual streams mixed by doubly-stochastic
            matrices (`HyperConnection`) around every attention and MLP sub-layer.
        name: model name.

    Examples:
    >>> vit = build_vit((224, 224, 3), patch_size=16, num_layers=1, hidden_dim=8, mlp_dim=16, num_heads=2,
    ...                 output="tokens")
    >>> vit.output_shape            # 224 / 16 = 14, 14 x 14 = 196 patches + [CLS] = 197 tokens
    (None, 197, 8)
    >>> build_vit((32, 32, 1), 4, 1, 8, 16, 2, output="grid").output_shape
    (None, 8, 8, 8)
    """
    height, width, _ = input_shape
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}. Received: output={output!r}")
    if ffn not in ("dense", "moe"):
        raise ValueError(f"ffn must be 'dense' or 'moe'. Received: ffn={ffn!r}")
    if residual not in ("add", "mhc"):
        raise ValueError(f"residual must be 'add' or 'mhc'. Received: residual={residual!r}")
    if height % patch_size or width % patch_size:
        raise ValueError(f"image size {height}x{width} is not divisible by patch_size={patch_size}")
    if hidden_dim % num_heads:
        raise ValueError(f"hidden_dim={hidden_dim} is not divisible by num_heads={num_heads}")
    grid = (height // patch_size, width // patch_size)
    num_patches = grid[0] * grid[1]

    # === Functional Model ===
    inputs = keras.Input(tuple(input_shape), name="images")
    x = keras.layers.Conv2D(hidden_dim, patch_size, strides=patch_size, name="patch_embedding")(inputs)
    x = keras.layers.Reshape((num_patches, hidden_dim), name="patches")(x)
    x = ClassToken(name="class_token")(x)
    x = x + keras_hub.layers.PositionEmbedding(num_patches + 1, name="position_embedding")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    if residual == "mhc":
        x = ops.stack([x] * num_streams, axis=-2)  # [B, T, n, D]: n copies of the embedding
    for index in range(num_layers):
        moe = ffn == "moe" and (index + 1) % moe_every == 0
        prefix = f"encoder_{index}"
        if residual == "mhc":
            x = HyperConnection(_attention_branch(num_patches + 1, hidden_dim, num_heads, dropout, prefix),
                                num_streams, name=f"{prefix}_attention_mhc")(x)
            x = HyperConnection(_mlp_branch(hidden_dim, mlp_dim, dropout, moe, num_experts, top_k, prefix),
                                num_streams, name=f"{prefix}_mlp_mhc")(x)
        elif moe:
            x = _moe_encoder_layer(x, hidden_dim, mlp_dim, num_heads, dropout, num_experts, top_k, prefix)
        else:
            x = keras_hub.layers.TransformerEncoder(
                mlp_dim, num_heads, dropout=dropout, activation="gelu", layer_norm_epsilon=LAYER_NORM_EPSILON,
                normalize_first=True, name=prefix)(x)
    if residual == "mhc":
        x = ops.mean(x, axis=-2)
    x = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="encoder_norm")(x)
    if output == "cls":
        x = keras.layers.Flatten(name="z0")(keras.layers.Cropping1D((0, num_patches), name="class_slot")(x))
    elif output == "grid":
        x = keras.layers.Cropping1D((1, 0), name="patch_slots")(x)
        x = keras.layers.Reshape((*grid, hidden_dim), name="patch_grid")(x)
    return keras.Model(inputs, x, name=name)


def build_vit_classifier(input_shape, num_classes: int, size: str = "base", patch_size: int = 16,
                         head_units: int | None = None, name: str | None = None, **options) -> keras.Model:
    """A ViT of one of `VIT_SIZES` with the notes' head: z0 -> [Dense(GELU)] -> Dense(num_classes).

    Args:
        head_units: the head's GELU hidden layer (the pre-training head); None: one linear layer (fine-tuning).

    Examples:
    >>> model = build_vit_classifier((32, 32, 3), 10, size="tiny", patch_size=4)
    >>> model.output_shape
    (None, 10)
    """
    if size not in VIT_SIZES:
        raise ValueError(f"unknown ViT size {size!r}: use one of {tuple(VIT_SIZES)}")
    encoder = build_vit(input_shape, patch_size, **{**VIT_SIZES[size], **options}, name="backbone")
    inputs = keras.Input(tuple(input_shape), name="images")
    x = encoder(inputs)
    if head_units:
        x = keras.layers.Dense(head_units, activation="gelu", name="head_hidden")(x)
    outputs = keras.layers.Dense(num_classes, name="head")(x)
    return keras.Model(inputs, outputs, name=name or f"vit_{size}_{patch_size}")


def vit_parameter_count(image_size: int, patch_size: int, num_layers: int, hidden_dim: int, mlp_dim: int,
                        channels: int = 3, num_classes: int = 0, **_) -> int:
    """ViT parameters, counted by hand (no weights built): patch projection, [CLS], positions, L layers of
    `4 D^2 + 4 D` (attention) + `2 D mlp + mlp + D` (MLP) + `4 D` (two LayerNorms), final LayerNorm, linear head.

    Examples:
    >>> vit_parameter_count(224, 16, **VIT_SIZES["base"], num_classes=1000)   # the notes' "86M"
    86567656
    """
    d = hidden_dim
    tokens = (image_size // patch_size) ** 2 + 1
    layer = 4 * d * d + 4 * d + 2 * d * mlp_dim + mlp_dim + d + 4 * d
    head = (d + 1) * num_classes if num_classes else 0
    return (patch_size**2 * channels + 1) * d + d + tokens * d + num_layers * layer + 2 * d + head


def _attention_branch(length, hidden_dim, num_heads, dropout, prefix) -> keras.Model:
    tokens = keras.Input((length, hidden_dim))
    normed = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"{prefix}_attention_norm")(tokens)
    attended = keras.layers.MultiHeadAttention(num_heads, hidden_dim // num_heads, dropout=dropout,
                                               name=f"{prefix}_attention")(normed, normed)
    return keras.Model(tokens, attended, name=f"{prefix}_attention_branch")


def _mlp_branch(hidden_dim, mlp_dim, dropout, moe, num_experts, top_k, prefix) -> keras.Sequential:
    layers = [keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"{prefix}_mlp_norm")]
    if moe:
        layers.append(MixtureOfExperts(num_experts, mlp_dim, top_k=top_k, name=f"{prefix}_moe"))
    else:
        layers += [keras.layers.Dense(mlp_dim, activation="gelu", name=f"{prefix}_mlp_1"),
                   keras.layers.Dense(hidden_dim, name=f"{prefix}_mlp_2")]
    if dropout:
        layers.append(keras.layers.Dropout(dropout, name=f"{prefix}_mlp_dropout"))
    return keras.Sequential(layers, name=f"{prefix}_mlp_branch")


def _moe_encoder_layer(x, hidden_dim, mlp_dim, num_heads, dropout, num_experts, top_k, prefix):
    """Pre-norm encoder layer whose MLP is a mixture of experts: x + MHA(LN(x)), then x + MoE(LN(x))."""
    normed = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"{prefix}_attention_norm")(x)
    attended = keras.layers.MultiHeadAttention(num_heads, hidden_dim // num_heads, dropout=dropout,
                                               name=f"{prefix}_attention")(normed, normed)
    if dropout:
        attended = keras.layers.Dropout(dropout, name=f"{prefix}_attention_dropout")(attended)
    x = keras.layers.Add(name=f"{prefix}_attention_add")([x, attended])
    normed = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"{prefix}_mlp_norm")(x)
    mixed = MixtureOfExperts(num_experts, mlp_dim, top_k=top_k, name=f"{prefix}_moe")(normed)
    if dropout:
        mixed = keras.layers.Dropout(dropout, name=f"{prefix}_mlp_dropout")(mixed)
    return keras.layers.Add(name=f"{prefix}_mlp_add")([x, mixed])
