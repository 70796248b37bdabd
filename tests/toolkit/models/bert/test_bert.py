"""Tiny random BERT (offline, local vocabulary): loading, heads, recipe, LoRA, dynamic padding, round trips."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit.models import bert

TEXTS = ["the cat sat on the mat", "good film", "the plot was very dull and not fun .", "great movie",
         "awful", "the dog is good and the cat is bad"]
LABELS = [0, 1, 0, 1, 0, 1]


def test_load_sources_and_errors(tmp_path, tiny, preset_dir):
    backbone, _, preprocessor = tiny
    assert bert.source_kind(preset_dir) == "keras_hub_folder"
    loaded, tokenizer = bert.load_bert(preset_dir)
    features = bert.pack(preprocessor, (tf.constant(TEXTS[:2]),))
    np.testing.assert_allclose(loaded(features)["sequence_output"], backbone(features)["sequence_output"], atol=1e-6)
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="gpt2"):
        bert.source_kind(str(hf))
    (hf / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        bert.source_kind(str(hf))
    (hf / "vocab.txt").write_text("x")
    assert bert.source_kind(str(hf)) == "hf_folder"
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        bert.source_kind(str(tmp_path))
    with pytest.raises(ValueError, match="unknown BERT checkpoint"):
        bert.source_kind("no_such_preset")
    assert bert.source_kind("bert_tiny_en_uncased") == "preset"  # online name: recognised, not downloaded
    with pytest.raises(ValueError, match="special tokens"):
        bert.tiny_bert(["a", "b"])


def test_dynamic_padding_shapes_and_same_predictions(tiny):
    backbone, _, preprocessor = tiny
    lengths = bert.sequence_lengths(TEXTS, preprocessor)
    assert lengths.tolist() == [8, 4, 11, 4, 3, 11]  # [CLS] + words + [SEP]
    shapes = [f["token_ids"].shape[1] for f, _ in bert.text_dataset(TEXTS, LABELS, preprocessor, 2)]
    assert shapes == [8, 16, 16]  # longest of each batch, rounded up to 8 (not 32)
    bucketed = [f["token_ids"].shape for f, _ in bert.text_dataset(TEXTS, LABELS, preprocessor, 2, padding="bucket")]
    assert sum(s[0] for s in bucketed) == 6 and max(s[1] for s in bucketed) <= 11
    model = bert.build_text_classifier(backbone, 2)
    dynamic = bert.predict_texts(model, preprocessor, TEXTS, batch_size=4)
    fixed = bert.predict_texts(model, preprocessor, TEXTS, batch_size=4, padding="max")
    np.testing.assert_allclose(dynamic, fixed, atol=1e-5)
    embedder = bert.build_embedder(backbone)
    a, b = (bert.embed_texts(embedder, preprocessor, TEXTS, 3), bert.predict_texts(embedder, preprocessor, TEXTS,
                                                                                   padding="max"))
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_schedule_and_optimizer():
    schedule = bert.LinearWarmupDecay(1e-4, total_steps=10, warmup_steps=2)
    assert [round(float(schedule(s)), 7) for s in (0, 1, 2, 6, 10, 12)] == [0.0, 5e-5, 1e-4, 5e-5, 0.0, 0.0]
    restored = bert.LinearWarmupDecay.from_config(schedule.get_config())
    assert float(restored(4)) == pytest.approx(float(schedule(4)))
    optimizer = bert.finetune_optimizer(100, learning_rate=3e-5)
    assert isinstance(optimizer, keras.optimizers.AdamW) and optimizer.weight_decay == pytest.approx(0.01)


def _weights(model):
    return {w.path: np.array(w.numpy()) for w in model.weights}


def test_full_finetune_step_and_round_trips(tmp_path, vocab_file):
    keras.utils.set_random_seed(1)
    backbone, tokenizer = bert.tiny_bert(vocab_file, hidden_dim=16, num_heads=2, max_sequence_length=32)
    preprocessor = bert.make_preprocessor(tokenizer, 32, backbone)
    model = bert.build_text_classifier(backbone, 2)
    before = _weights(model)
    history, counts = bert.fine_tune(model, preprocessor, TEXTS * 2, LABELS * 2, epochs=2, batch_size=6,
                                     learning_rate=1e-3)
    pooler = 16 * 16 + 16  # the unused [CLS] pooler is frozen under a mean-pooled head
    assert counts["trainable"] == counts["total"] - pooler and counts["total"] == model.count_params()
    assert history.history["loss"][-1] < history.history["loss"][0]
    after = _weights(model)
    embedding = next(k for k in after if "token_embedding" in k)
    assert not np.allclose(before[embedding], after[embedding])  # full fine-tuning moves the backbone
    expected = bert.predict_texts(model, preprocessor, TEXTS)
    path = str(tmp_path / "m.keras")
    model.save(path)
    restored = keras.saving.load_model(path, compile=False)
    np.testing.assert_allclose(bert.predict_texts(restored, preprocessor, TEXTS), expected, atol=1e-6)


def _fresh(vocab_file):
    return bert.tiny_bert(vocab_file, hidden_dim=16, num_heads=2, max_sequence_length=32)[0]


def test_notes_lora_trains_qkvo_adapters_and_merges(tiny, vocab_file):
    _, _, preprocessor = tiny
    model = bert.build_text_classifier(_fresh(vocab_file), 2)
    counts = bert.set_training_mode(model, "lora", lora_rank=2)
    # 2 layers x Q/K/V/O x r (d + k) = 2 x 4 x 2 x (16 + 16), plus the head Dense(16 -> 2); no bias trains
    assert counts["trainable"] == 2 * 4 * 2 * (16 + 16) + (16 * 2 + 2)
    history, _ = bert.fine_tune(model, preprocessor, TEXTS, LABELS, epochs=2, batch_size=3, learning_rate=1e-2,
                                mode="lora", lora_rank=2, linear_probe=False, merge_adapters=False)
    assert history.history["loss"][-1] < history.history["loss"][0]
    features = bert.pack(preprocessor, tf.constant(TEXTS))
    before = model(features).numpy()
    from toolkit.layers.lora import merge_lora

    assert merge_lora(model) == 8 and not any("lora" in w.path for w in model.weights)
    np.testing.assert_allclose(model(features).numpy(), before, atol=1e-5)


def test_keras_hub_lora_trains_only_adapters(tiny, vocab_file):
    _, _, preprocessor = tiny
    backbone = _fresh(vocab_file)
    model = bert.build_text_classifier(backbone, 2)
    counts = bert.set_training_mode(model, "lora-keras", lora_rank=2)
    # per attention layer, query and value: A (16 x 2 heads x r=2) + B (r=2 x 8 head dim) + bias (2 x 8);
    # 2 layers x 2 projections, plus the head Dense(16 -> 2)
    assert counts["trainable"] == 2 * 2 * (16 * 2 * 2 + 2 * 8 + 2 * 8) + (16 * 2 + 2)
    assert {w.path.split("/")[-1] for w in model.trainable_weights} == {"lora_kernel_a", "lora_kernel_b", "bias",
                                                                         "kernel"}
    before = _weights(model)
    bert.compile_classifier(model, total_steps=4, learning_rate=1e-2)
    model.fit(bert.text_dataset(TEXTS, LABELS, preprocessor, 3), epochs=2, verbose=0)
    after = _weights(model)
    changed = {k for k in after if not np.allclose(before[k], after[k])}
    trainable = {w.path for w in model.trainable_weights}
    assert changed and changed <= trainable  # nothing outside the adapters / head moved
    assert any("lora_kernel_b" in k for k in changed) and any("logits" in k for k in changed)
    assert all(np.allclose(before[k], after[k]) for k in after if k.endswith("query/kernel")
               or k.endswith("value/kernel") or "token_embedding" in k)


def test_frozen_mode_and_token_classifier(tiny, vocab_file):
    _, _, preprocessor = tiny
    model = bert.build_text_classifier(_fresh(vocab_file), 3, pooling="cls")
    counts = bert.set_training_mode(model, "frozen")
    assert counts["trainable"] == 16 * 3 + 3
    tagger = bert.build_token_classifier(_fresh(vocab_file), num_tags=4)
    features = bert.pack(preprocessor, (tf.constant(TEXTS[:2]),))
    assert tagger(features).shape == (2, 32, 4)
    tags = np.random.default_rng(0).integers(0, 4, size=(2, 32))
    bert.compile_classifier(tagger, total_steps=2, learning_rate=1e-3, token_level=True)
    history = tagger.fit(features, tags, sample_weight=features["padding_mask"], epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    with pytest.raises(ValueError, match="mode must be one of"):
        bert.set_training_mode(model, "partial")


def test_fit_head_is_the_logistic_regression_probe_and_leaves_the_backbone(tiny, vocab_file):
    from sklearn.linear_model import LogisticRegression

    _, _, preprocessor = tiny
    for labels in (LABELS, [0, 1, 2, 0, 1, 2]):  # binary (one sklearn logit) and multinomial
        model = bert.build_text_classifier(_fresh(vocab_file), max(labels) + 1)
        backbone = {k: v for k, v in _weights(model).items() if "logits" not in k}
        accuracy = bert.fit_head(model, preprocessor, TEXTS, labels, c=10.0)
        features = bert.predict_texts(keras.Model(model.inputs, model.get_layer("logits").input), preprocessor, TEXTS)
        reference = LogisticRegression(C=10.0, max_iter=2000).fit(features, labels)
        np.testing.assert_allclose(bert.predict_texts(model, preprocessor, TEXTS), reference.predict_proba(features),
                                   atol=1e-4)
        assert accuracy == pytest.approx(reference.score(features, labels))
        after = _weights(model)
        assert all(np.array_equal(after[k], v) for k, v in backbone.items())
    with pytest.raises(ValueError, match=r"labels must be class ids in \[0, 3\)"):
        bert.fit_head(model, preprocessor, TEXTS, [0, 1, 2, 3, 0, 1])


def test_tpu_strategy_fine_tunes_on_static_shapes(tiny, vocab_file, monkeypatch):
    from toolkit.models.bert import pipeline

    _, _, preprocessor = tiny
    monkeypatch.setattr(pipeline, "needs_static_batches", lambda strategy: True)  # no TPU here: pretend
    model = bert.build_text_classifier(_fresh(vocab_file), 2)
    seen = []
    fit = model.fit
    monkeypatch.setattr(model, "fit", lambda data, **kw: seen.append(data.element_spec) or fit(data, **kw))
    bert.fine_tune(model, preprocessor, TEXTS + TEXTS[:1], LABELS + LABELS[:1], epochs=1, batch_size=3,
                   validation=(TEXTS, LABELS))
    features, labels = seen[0]
    assert features["token_ids"].shape.as_list() == [3, 32] and labels.shape.as_list() == [3]


def test_flop_count_matches_hand_formula(tiny):
    backbone = tiny[0]
    embedding = (len(backbone.token_embedding.embeddings.numpy()) + 32 + 2) * 16
    dense = backbone.count_params() - embedding
    assert bert.training_flops_per_example(backbone, 10) == pytest.approx(6 * dense * 10 + 12 * 2 * 16 * 100)
