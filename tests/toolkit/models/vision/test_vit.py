"""ViT builder: the notes' token arithmetic and sizes, variants (MoE FFN, mHC streams), XLA, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import harness
from toolkit.layers import ClassToken, HyperConnection, MixtureOfExperts
from toolkit.models.vision import VIT_SIZES, build_vit, build_vit_classifier, trainable_parameters, vit_parameter_count

TINY = {"num_layers": 2, "hidden_dim": 8, "mlp_dim": 16, "num_heads": 2}


def test_224_px_with_16_px_patches_is_196_patches_and_197_tokens():
    vit = build_vit((224, 224, 3), 16, **TINY, output="tokens")
    assert vit.get_layer("patches").output.shape[1] == 196
    assert vit.output_shape == (None, 197, 8)
    assert vit.get_layer("position_embedding").weights[0].shape == (197, 8)  # learned, sequence N + 1
    # the patch projection E is D x P^2 C: a 16 x 16 stride-16 convolution
    assert vit.get_layer("patch_embedding").kernel.shape == (16, 16, 3, 8)


def test_outputs_z0_grid_and_tokens():
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 1)).astype("float32")
    tokens = build_vit((16, 16, 1), 4, **TINY, output="tokens")
    cls = keras.Model(tokens.input, keras.layers.Flatten()(keras.layers.Cropping1D((0, 16))(tokens.output)))
    np.testing.assert_allclose(cls(x).numpy(), tokens(x).numpy()[:, 0], atol=1e-6)
    assert build_vit((16, 16, 1), 4, **TINY, output="cls").output_shape == (None, 8)
    assert build_vit((16, 16, 1), 4, **TINY, output="grid").output_shape == (None, 4, 4, 8)


def test_parameter_counts_of_the_notes_sizes():
    # Base 86M, Large 307M, Huge 632M (F3:14444-14459); counted by hand, no weights built
    assert vit_parameter_count(224, 16, **VIT_SIZES["base"], num_classes=1000) == 86_567_656
    assert abs(vit_parameter_count(224, 16, **VIT_SIZES["large"], num_classes=1000) / 307e6 - 1) < 0.01  # 304.3M
    assert round(vit_parameter_count(224, 14, **VIT_SIZES["huge"], num_classes=1000) / 1e6) == 632
    # the hand count is the built model's: keras-hub TransformerEncoder layers are 12 D^2 + 13 D (MLP = 4 D)
    model = build_vit_classifier((32, 32, 3), 10, size="tiny", patch_size=4)
    assert trainable_parameters(model) == vit_parameter_count(32, 4, **VIT_SIZES["tiny"], num_classes=10)


@pytest.mark.slow
def test_vit_base_built_without_weights_has_86m_parameters():
    model = build_vit_classifier((224, 224, 3), 1000, size="base", patch_size=16)
    assert trainable_parameters(model) == 86_567_656


def test_pre_norm_encoder_layers_from_keras_hub():
    import keras_hub

    vit = build_vit((8, 8, 1), 4, **TINY)
    encoders = [l for l in vit.layers if isinstance(l, keras_hub.layers.TransformerEncoder)]
    assert len(encoders) == 2 and all(e.normalize_first for e in encoders)
    assert all(e.activation == keras.activations.gelu or "gelu" in str(e.activation) for e in encoders)
    assert isinstance(vit.get_layer("class_token"), ClassToken)


def test_moe_and_mhc_variants():
    moe = build_vit((8, 8, 1), 4, **{**TINY, "num_layers": 4}, ffn="moe", num_experts=3, top_k=1)
    assert [l.name for l in moe.layers if isinstance(l, MixtureOfExperts)] == ["encoder_1_moe", "encoder_3_moe"]
    mhc = build_vit((8, 8, 1), 4, **TINY, residual="mhc", num_streams=3)
    blocks = [l for l in mhc.layers if isinstance(l, HyperConnection)]
    assert len(blocks) == 4 and all(b.num_streams == 3 for b in blocks)
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 1)).astype("float32")
    assert moe(x).shape == (2, 8) and mhc(x).shape == (2, 8)


def test_variants_xla_compile_as_the_tpu_export_does():
    x = np.random.default_rng(2).normal(size=(2, 8, 8, 1)).astype("float32")
    for model in (build_vit((8, 8, 1), 4, **TINY, ffn="moe", residual="mhc", num_streams=2),
                  build_vit((8, 8, 1), 4, **TINY)):
        compiled = tf.function(lambda t: model(t, training=False), jit_compile=True)
        np.testing.assert_allclose(compiled(x).numpy(), model(x, training=False).numpy(), atol=1e-4)


def test_bad_options_name_the_value():
    with pytest.raises(ValueError, match="not divisible by patch_size=16"):
        build_vit((28, 28, 1), 16, **TINY)
    with pytest.raises(ValueError, match="output="):
        build_vit((16, 16, 1), 4, **TINY, output="mean")
    with pytest.raises(ValueError, match="unknown ViT size 'giant'"):
        build_vit_classifier((16, 16, 1), 2, size="giant")


def test_saves_and_reloads_in_a_fresh_process(tmp_path):
    """One child loads a plain ViT (keras-hub layers), an MoE + mHC ViT, and the ResNet variants."""
    from toolkit.models.vision import build_resnet, build_resnet_ode

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(3).normal(size=(2, 8, 8, 1)).astype("float32")
    models = {"vit": build_vit((8, 8, 1), 4, **TINY, name="vit"),
              "vit_moe_mhc": build_vit((8, 8, 1), 4, **TINY, ffn="moe", residual="mhc", num_streams=2,
                                       name="vit_moe_mhc"),
              "resnet_mhc": build_resnet((8, 8, 1), 18, width=4, stem="small", mixing="mhc", num_stages=2,
                                         name="resnet_mhc"),
              "resnet_ode": build_resnet_ode((8, 8, 1), width=4, steps=3, blocks=(1, 1), name="resnet_ode")}
    jobs = []
    for name, model in models.items():
        path = harness.run_model_saving_test(model, x, tmp_dir=str(tmp_path), fresh_process=False)
        jobs.append((path, x))
    fresh = harness.fresh_process_outputs(jobs)
    for (name, model), got in zip(models.items(), fresh):
        harness.assert_outputs_match(harness.flatten(model(x, training=False)), got, where=name)
