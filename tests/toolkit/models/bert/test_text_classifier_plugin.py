"""`text_classifier.train(..., model="bert", checkpoint=PATH)` and `model="transformer"` through the registry."""

import keras
import numpy as np
import pytest

from apps import text_classifier

TEXTS = ["good film", "great movie", "bad film", "awful movie", "good and great", "bad and awful"] * 3
LABELS = ["pos", "pos", "neg", "neg", "pos", "neg"] * 3


def test_bert_family_trains_exports_and_reloads(tmp_path, preset_dir):
    keras.utils.set_random_seed(0)
    unlabelled = tmp_path / "domain.txt"
    unlabelled.write_text("the film was good\nthe plot was dull\na great movie\nan awful film\n")
    run = text_classifier.train((TEXTS, LABELS), model="bert", checkpoint=preset_dir, fine_tuning="lora",
                                adapt_text=str(unlabelled), adapt_epochs=1,
                                lora_rank=2, epochs=2, batch_size=6, learning_rate=1e-2, sequence_length=16,
                                verbose=0, run_dir=str(tmp_path / "runs"), validation_split=0.0, patience=-1)
    classifier = run.model.get_layer("classifier")  # the notes' LoRA, merged into W0 after training
    assert not any("lora" in w.path for w in classifier.weights)
    from toolkit.models.bert import find_backbone, load_bert

    # the masked-LM step moved the token embeddings (LoRA alone never touches them)
    original = load_bert(preset_dir)[0].token_embedding.get_weights()[0]
    assert not np.allclose(find_backbone(classifier).token_embedding.get_weights()[0], original)
    live = text_classifier.predict(run, ["good film", "awful movie"])
    # the merged adapter exports like any classifier: the static-batch tpu graph here (the cpu export of a bert
    # classifier is a conformance cell, tests/conformance/test_text_classifier_cnn_bert.py)
    exported = text_classifier.predict(run.export(str(tmp_path / "sm"), target="tpu"), ["good film", "awful movie"])
    assert [p["label"] for p in exported] == [p["label"] for p in live]
    np.testing.assert_allclose([p["score"] for p in exported], [p["score"] for p in live], atol=1e-5)
    reopened = text_classifier.APP.load_run(run.run_dir)
    assert text_classifier.predict(reopened, ["good film"])[0]["score"] == pytest.approx(live[0]["score"], abs=1e-5)


def test_transformer_family(tmp_path):
    run = text_classifier.train((TEXTS, LABELS), model="transformer", epochs=3, batch_size=6, sequence_length=8,
                                embedding_dim=16, verbose=0, run_dir=str(tmp_path / "runs"))
    assert 0.0 <= run.metrics["accuracy"] <= 1.0
    assert run.model.get_layer("classifier").get_layer("encoder_0") is not None
    path = run.export(str(tmp_path / "tr"), target="tpu")
    assert text_classifier.predict(path, ["good film"])[0]["label"] in ("pos", "neg")


def test_lora_adapters_swap_tasks_on_one_base_in_an_export(tmp_path, preset_dir):
    """Two lora runs on one checkpoint; `run_a.export(..., lora_adapter=RUN_B/adapter.npz)` exports task b on run
    a's base (reloaded from disk): b's labels and b's scores. The CLI and the served swap: tests/conformance/
    test_text_classifier_lora.py."""
    import os

    from apps.lora_tasks import ADAPTER_FILE
    from toolkit.export.loader import read_metadata
    from toolkit.layers.lora import adapter_metadata

    common = dict(model="bert", checkpoint=preset_dir, fine_tuning="lora", lora_rank=2, epochs=2, batch_size=6,
                  learning_rate=1e-2, sequence_length=16, verbose=0, validation_split=0.3, patience=-1)
    keras.utils.set_random_seed(0)
    run_a = text_classifier.train((TEXTS, LABELS), run_dir=str(tmp_path / "a"), **common)
    flipped = {"pos": "gloomy", "neg": "cheerful"}  # task b: other names, the opposite meaning
    run_b = text_classifier.train((TEXTS, [flipped[label] for label in LABELS]), run_dir=str(tmp_path / "b"),
                                  **common)
    adapter_b = os.path.join(run_b.run_dir, ADAPTER_FILE)
    meta = adapter_metadata(adapter_b)
    assert meta["class_names"] == ["cheerful", "gloomy"] and meta["base"] == adapter_metadata(
        os.path.join(run_a.run_dir, ADAPTER_FILE))["base"]
    assert meta["metrics"]["accuracy"] == pytest.approx(run_b.metrics["accuracy"])
    served = str(tmp_path / "served")
    reloaded = text_classifier.APP.load_run(run_a.run_dir)
    reloaded.export(served)
    reloaded.export(served, lora_adapter=adapter_b)
    inputs = ["good film", "awful movie", "great and fun"]
    version_1 = text_classifier.predict(os.path.join(served, "1"), inputs)
    version_2 = text_classifier.predict(os.path.join(served, "2"), inputs)
    assert [p["label"] for p in version_1] == [p["label"] for p in text_classifier.predict(run_a, inputs)]
    live_b = text_classifier.predict(run_b, inputs)
    assert [p["label"] for p in version_2] == [p["label"] for p in live_b]
    np.testing.assert_allclose([p["score"] for p in version_2], [p["score"] for p in live_b], atol=1e-4)
    # and back to task a from the same (swapped) Run: version 3 answers as version 1
    reloaded.export(served, lora_adapter=os.path.join(run_a.run_dir, ADAPTER_FILE))
    np.testing.assert_allclose([p["score"] for p in text_classifier.predict(os.path.join(served, "3"), inputs)],
                               [p["score"] for p in version_1], atol=1e-4)
    info = read_metadata(os.path.join(served, "2"))["info"]
    assert info["class_names"] == ["cheerful", "gloomy"] and info["lora_adapter"] == os.path.abspath(adapter_b)
    with pytest.raises(ValueError, match="no such file"):
        run_a.export(str(tmp_path / "x"), lora_adapter=str(tmp_path / "missing.npz"))
