"""The notes' LoRA (W0 + BA on the flattened d x k projection): parameter counts, rank, merge, hot swaps, saving."""

import keras
import numpy as np
import pytest

from toolkit.layers.lora import LoRAEinsumDense, enable_lora, load_adapters, lora_layers, merge_lora, save_adapters


def _query(hidden, heads):
    layer = keras.layers.EinsumDense("abc,cde->abde", output_shape=(None, heads, hidden // heads), bias_axes="de")
    layer.build((None, None, hidden))
    return layer


def _count(layer):
    return sum(int(np.prod(w.shape)) for w in layer.trainable_weights)


def test_parameter_counts_match_the_notes_oracle():
    # oracle 46 (F3:15769-15781): d = k = 4096, r = 8 -> 65,536 LoRA parameters vs 16,777,216 full
    lora = LoRAEinsumDense(keras.layers.EinsumDense("ab,bc->ac", output_shape=4096, bias_axes=None), rank=8)
    lora.build((None, 4096))
    assert _count(lora) == 65_536 and int(np.prod(lora.base.kernel.shape)) == 16_777_216
    assert not lora.base.kernel.trainable
    # a 768-wide 12-head query at r = 8: 8 x (768 + 768) = 12,288 (keras' own enable_lora: 74,240, rank 96)
    lora = LoRAEinsumDense(_query(768, 12), rank=8)
    lora.build((None, None, 768))
    assert _count(lora) == 12_288
    keras_form = _query(768, 12)
    keras_form.enable_lora(8)
    lora_params = sum(int(np.prod(w.shape)) for w in keras_form.trainable_weights if "lora" in w.path)
    assert lora_params == 74_240  # what the issue measured for keras-hub's form (its bias trains too)
    a = keras.ops.convert_to_numpy(keras_form.lora_kernel_a)
    b = np.random.default_rng(1).normal(size=keras_form.lora_kernel_b.shape)
    assert np.linalg.matrix_rank(np.einsum("chr,rd->chd", a, b).reshape(768, 768)) == 96


def test_update_has_rank_r_and_starts_at_zero():
    lora = LoRAEinsumDense(_query(64, 4), rank=3, seed=0)
    lora.build((None, None, 64))
    x = np.random.default_rng(0).normal(size=(2, 5, 64)).astype("float32")
    np.testing.assert_allclose(lora(x), lora.base(x), atol=1e-6)  # B = 0: starts at W0 exactly
    a = keras.ops.convert_to_numpy(lora.lora_a)
    assert a.shape == (64, 3) and abs(a.std() - 1 / 8) < 0.03  # A ~ N(0, s^2), s = 1/sqrt(k)
    b = np.random.default_rng(2).normal(size=(3, 64)).astype("float32")
    lora.lora_b.assign(b)
    delta = lora.delta_matrix()
    assert delta.shape == (64, 64) and np.linalg.matrix_rank(delta) == 3
    want = keras.ops.convert_to_numpy(lora.base(x)) + (x.reshape(-1, 64) @ delta.T).reshape(2, 5, 4, 16)
    np.testing.assert_allclose(lora(x), want, atol=1e-4)  # h = W0 x + BA x


def test_bad_arguments():
    with pytest.raises(ValueError, match="rank must be >= 1"):
        LoRAEinsumDense(_query(8, 2), rank=0)
    with pytest.raises(TypeError, match="EinsumDense"):
        LoRAEinsumDense(keras.layers.Dense(3), rank=2)
    with pytest.raises(ValueError, match="activation"):
        LoRAEinsumDense(keras.layers.EinsumDense("ab,bc->ac", output_shape=3, activation="relu"), rank=2)
    with pytest.raises(ValueError, match="targets"):
        enable_lora(_attention_model()[0], targets=("ffn",))


def _attention_model(seed=0):
    keras.utils.set_random_seed(seed)
    x = keras.Input((5, 8))
    y = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(x, x)
    y = keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling1D()(y))
    return keras.Model(x, y), np.random.default_rng(seed).normal(size=(4, 5, 8)).astype("float32")


def _randomise(model, seed):
    rng = np.random.default_rng(seed)
    for layer in lora_layers(model).values():
        layer.lora_b.assign(rng.normal(size=layer.lora_b.shape).astype("float32"))


def test_merge_removes_adapters_and_keeps_outputs(tmp_path):
    model, x = _attention_model()
    adapters = enable_lora(model, rank=2)
    assert len(adapters) == 4
    model.get_layer("head").trainable = True
    trainable = {w.path.split("/")[-1] for w in model.trainable_weights}
    assert trainable == {"lora_a", "lora_b", "kernel", "bias"} and _count(model) == 4 * 2 * 16 + 8 * 3 + 3
    _randomise(model, 3)
    before = keras.ops.convert_to_numpy(model(x))
    assert merge_lora(model) == 4
    assert not any("lora" in w.path for w in model.weights) and not lora_layers(model)
    np.testing.assert_allclose(model(x), before, atol=1e-5)
    path = str(tmp_path / "merged.keras")  # a plain model again: .keras round trip with the merged kernels
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(x), before, atol=1e-5)


def test_hot_swap_adapters_on_one_base(tmp_path):
    model, x = _attention_model()
    enable_lora(model, rank=2)
    base = keras.ops.convert_to_numpy(model(x))
    _randomise(model, 1)
    task_a = save_adapters(model, str(tmp_path / "task_a"))
    out_a = keras.ops.convert_to_numpy(model(x))
    _randomise(model, 2)
    task_b = save_adapters(model, str(tmp_path / "task_b.npz"))
    out_b = keras.ops.convert_to_numpy(model(x))
    assert not np.allclose(out_a, out_b) and not np.allclose(out_a, base)
    assert load_adapters(model, task_a) == 4
    np.testing.assert_allclose(model(x), out_a, atol=1e-6)
    load_adapters(model, task_b)
    np.testing.assert_allclose(model(x), out_b, atol=1e-6)
    other, _ = _attention_model()
    enable_lora(other, rank=3)
    with pytest.raises(ValueError, match="different rank"):
        load_adapters(other, task_a)
    with pytest.raises(ValueError, match="no LoRA adapters"):
        save_adapters(_attention_model()[0], str(tmp_path / "none"))


def test_layer_keras_round_trip(tmp_path):
    x = keras.Input((None, 16))
    lora = LoRAEinsumDense(keras.layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 8)), rank=2, seed=0)
    model = keras.Model(x, lora(x))
    lora.lora_b.assign(np.random.default_rng(0).normal(size=(2, 16)).astype("float32"))
    data = np.random.default_rng(1).normal(size=(2, 3, 16)).astype("float32")
    path = str(tmp_path / "lora.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored(data), model(data), atol=1e-6)
    layer = restored.layers[-1]
    assert isinstance(layer, LoRAEinsumDense) and layer.rank == 2 and _count(layer) == 2 * (16 + 16)


def test_swap_merged_adapter_serves_another_task_on_the_same_base(tmp_path):
    from toolkit.layers.lora import adapter_metadata, swap_merged_adapter

    model, x = _attention_model()
    enable_lora(model, rank=2)
    head = model.get_layer("head")
    _randomise(model, 1)
    task_a = save_adapters(model, str(tmp_path / "a"), head=head, metadata={"class_names": ["x", "y", "z"]})
    out_a = keras.ops.convert_to_numpy(model(x))
    _randomise(model, 2)
    head.set_weights([w + 0.5 for w in head.get_weights()])  # task b has its own head too
    task_b = save_adapters(model, str(tmp_path / "b"), head=head, metadata={"class_names": ["p", "q", "r"]})
    out_b = keras.ops.convert_to_numpy(model(x))
    load_adapters(model, task_a)
    head.set_weights([w - 0.5 for w in head.get_weights()])
    np.testing.assert_allclose(model(x), out_a, atol=1e-6)
    merge_lora(model)  # what a finished lora run saves: base + a, merged
    assert swap_merged_adapter(model, task_a, task_b, head=head) == {"class_names": ["p", "q", "r"]}
    assert not lora_layers(model)
    np.testing.assert_allclose(model(x), out_b, atol=1e-5)
    swap_merged_adapter(model, task_b, task_a, head=head)  # and back: the base itself never drifts
    np.testing.assert_allclose(model(x), out_a, atol=1e-5)
    assert adapter_metadata(task_a)["class_names"] == ["x", "y", "z"]
    # a differently shaped head (another class count) is refused, naming both shapes
    other, _ = _attention_model()
    enable_lora(other, rank=2)
    small = keras.layers.Dense(2)
    small.build((None, 8))
    with pytest.raises(ValueError, match="another number of classes"):
        swap_merged_adapter(model, task_a, save_adapters(other, str(tmp_path / "c"), head=small), head=head)
    with pytest.raises(ValueError, match="live adapters"):
        swap_merged_adapter(other, task_a, task_b)
