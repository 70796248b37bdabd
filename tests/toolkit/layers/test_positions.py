"""RoPE / ALiBi attention: the ALiBi bias against numpy, RoPE's relative property, masking, .keras round trip."""

import keras
import numpy as np
import pytest

from toolkit.layers.positions import PositionalSelfAttention, alibi_bias, alibi_slopes


def test_alibi_bias_matches_numpy_oracle():
    heads, length = 8, 6
    slopes = 2.0 ** (-8.0 * np.arange(1, heads + 1) / heads)
    assert alibi_slopes(8).tolist() == [2.0 ** -k for k in range(1, 9)] == slopes.tolist()  # 1/2 ... 1/256
    i, j = np.meshgrid(np.arange(length), np.arange(length), indexing="ij")
    oracle = -slopes[:, None, None] * np.abs(i - j)[None]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(alibi_bias(length, heads)), oracle, atol=1e-7)


def test_rope_dot_product_depends_only_on_the_offset():
    import keras_hub

    rotary = keras_hub.layers.RotaryEmbedding(sequence_axis=1, feature_axis=-1)
    rng = np.random.default_rng(0)
    q, k = (rng.normal(size=(1, 1, 1, 8)).astype("float32") for _ in range(2))

    def rotated(x, position):
        return keras.ops.convert_to_numpy(rotary(keras.ops.convert_to_tensor(x), start_index=position))[0, 0, 0]

    dots = {(i, j): float(rotated(q, i) @ rotated(k, j)) for i in range(6) for j in range(6)}
    for (i, j), value in dots.items():
        assert value == pytest.approx(dots[(i - j, 0)] if i >= j else dots[(0, j - i)], abs=1e-4)
    assert abs(dots[(3, 0)] - dots[(0, 0)]) > 1e-3  # and it does depend on the offset


@pytest.mark.parametrize("positions", ["rope", "alibi"])
def test_padding_keys_are_ignored_and_layer_round_trips(tmp_path, positions):
    keras.utils.set_random_seed(0)
    layer = PositionalSelfAttention(2, 4, positions)
    x = np.random.default_rng(1).normal(size=(2, 5, 8)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    out = keras.ops.convert_to_numpy(layer(x, padding_mask=mask))
    changed = x.copy()
    changed[0, 3:] = 7.0  # padded keys: the real positions' outputs do not move
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(changed, padding_mask=mask))[0, :3], out[0, :3],
                               atol=1e-5)
    inputs = keras.Input((None, 8))
    model = keras.Model(inputs, PositionalSelfAttention(2, 4, positions, name="attention")(inputs))
    path = str(tmp_path / f"{positions}.keras")
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(x), model(x), atol=1e-6)
    with pytest.raises(ValueError, match="positions"):
        PositionalSelfAttention(2, 4, "relative")
