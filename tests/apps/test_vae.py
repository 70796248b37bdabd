"""The VAE app end to end: train -> metrics, plots, few-label classifier -> export signatures -> evaluate, predict."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from apps import cli, vae
from toolkit.data import samples
from toolkit.data.images import DataError
from toolkit.export import encode_png, load

TINY = dict(epochs=1, batch_size=32, architecture="dense", latent_dim=2, hidden=16, iw_samples=8, iw_images=40,
            semi_supervised="5", semi_supervised_repeats=1, verbose=0, patience=-1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    x, y, names = samples.digits()
    root = tmp_path_factory.mktemp("vae")
    run = vae.train((x[:400], y[:400], names), test_data=(x[1500:1600], y[1500:1600], names),
                    run_dir=str(root), **TINY)
    return run, root, (x[1500:1600], y[1500:1600], names)


def test_train_metrics_plots_and_semi_supervised(trained):
    run, _, _ = trained
    m = run.metrics
    assert m["evaluated_on"] == "test" and m["num_images"] == 100 and m["iw_images"] == 40
    assert 0 < m["kl"] < m["neg_elbo"] < 64 * np.log(2) * 1.5  # 64 binary pixels
    assert m["iwae_bound"] <= m["neg_elbo_k"] + 1e-6  # the k-sample bound is never looser
    assert m["reconstruction_nll"] == pytest.approx(m["neg_elbo"] - m["kl"])
    semi = m["semi_supervised"]["5"]
    assert 0.0 <= semi["latent"]["mean"] <= 1.0 and len(semi["pixels"]["runs"]) == 1
    assert semi["pixels"]["mean"] > 0.3  # 5 labelled digits per class on raw pixels beats chance (0.1)
    for name in ("reconstructions", "samples", "interpolation", "latent_scatter", "manifold", "history"):
        with open(run.plots[name], "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(run.run_dir, "metrics.json")) as f:
        assert "semi_supervised" in json.load(f)


def test_export_signatures_round_trip(trained):
    run, root, test = trained
    path = run.export(str(root / "export"))
    meta = json.load(open(os.path.join(path, "assets.extra", "toolkit.json")))
    assert set(meta["parity_max_abs_diff"]["saved_model"]) >= {"encode", "decode", "sample", "reconstruct"}
    model = run.model
    module = tf.saved_model.load(path)
    images = test[0][:3].astype("float32")
    encoded = tf.constant([encode_png(im) for im in images])
    mu, log_var = model.encode(images)
    out = module.signatures["encode"](images=encoded)
    np.testing.assert_allclose(out["mu"], mu, atol=1e-5)
    np.testing.assert_allclose(out["log_var"], log_var, atol=1e-5)
    np.testing.assert_allclose(module.signatures["encode_pixels"](pixels=images)["mu"], mu, atol=1e-5)
    decoded = module.signatures["decode"](z=mu)
    np.testing.assert_allclose(decoded["images"], 255 * model.decode(mu).numpy(), atol=1e-3)
    png = tf.io.decode_png(decoded["png"][0]).numpy()
    assert png.shape == (8, 8, 1) and np.abs(png - np.round(decoded["images"][0].numpy())).max() <= 1
    recon = module.signatures["reconstruct"](images=encoded)
    np.testing.assert_allclose(recon["images"], decoded["images"], atol=1e-3)
    first = module.signatures["sample"](seed=tf.constant([4, 5, 4]))
    assert first["images"].shape == (3, 8, 8, 1)
    np.testing.assert_allclose(first["images"][0], first["images"][2])  # same seed, same image
    assert np.abs(first["z"][0] - first["z"][1]).max() > 1e-3
    np.testing.assert_allclose(first["z"], model.prior_latents(tf.constant([4, 5, 4])), atol=1e-6)
    # evaluating the export gives the live run's metrics (same noise seeds)
    metrics = vae.evaluate(path, test)
    for key in ("neg_elbo", "iwae_bound", "kl", "reconstruction_mse"):
        assert metrics[key] == pytest.approx(run.metrics[key], rel=1e-4)
    predictions = vae.predict(load(path), [test[0][0]])
    assert len(predictions[0]["mu"]) == 2 and predictions[0]["reconstruction_error"] >= 0


def test_unlabelled_folder_and_cli(tmp_path, capsys):
    folder = tmp_path / "flat"
    folder.mkdir()
    x, _, _ = samples.digits()
    for i in range(40):
        (folder / f"{i:03d}.png").write_bytes(encode_png(x[i]))
    images = vae.load_images(str(folder))
    assert images.x.shape == (40, 8, 8, 1) and images.y is None
    np.testing.assert_array_equal(images.x[3], x[3])
    with pytest.raises(DataError, match="has no images"):
        vae.load_images(str(_empty(tmp_path)))
    with pytest.raises(SystemExit):
        cli.main(["vae", "train", "--help"])
    help_text = capsys.readouterr().out
    assert "--latent-dim" in help_text and "--kl-warmup-epochs" in help_text and "importance" in help_text
    assert cli.main(["vae", "train", "--data", str(tmp_path / "missing"), "--verbose", "0"]) == 2
    assert "does not exist" in capsys.readouterr().err


def _empty(tmp_path):
    path = tmp_path / "empty"
    path.mkdir()
    return path


def test_tpu_export_gives_every_signature_a_static_batch(trained):
    run, root, test = trained
    path = run.export(str(root / "export_tpu"), target="tpu", batch_size=4)
    meta = json.load(open(os.path.join(path, "assets.extra", "toolkit.json")))
    assert meta["signatures"]["decode"]["z"]["shape"] == [4, 2]
    assert meta["signatures"]["log_weights"]["noise"]["shape"] == [4, None, 2]
    assert set(meta["parity_max_abs_diff"]["saved_model"]) >= {"encode", "decode", "sample", "reconstruct"}
    decode = tf.saved_model.load(path).signatures["decode"]
    assert decode.structured_input_signature[1]["z"].shape.as_list() == [4, 2]
    z = run.model.encode(test[0][:4].astype("float32"))[0]
    np.testing.assert_allclose(decode(z=z)["images"], 255 * run.model.decode(z).numpy(), atol=1e-3)


def test_a_small_set_gets_a_batch_that_gives_enough_steps(tmp_path):
    x, y, names = samples.digits()
    run = vae.train((x[:40], y[:40], names), run_dir=str(tmp_path), epochs=1, architecture="dense", latent_dim=2,
                    hidden=16, iw_samples=4, iw_images=10, semi_supervised="", verbose=0, patience=-1)
    assert run.info["batch_size"] == 4  # 36 training images at the default 128 would be one step an epoch
    assert len(run.history["loss"]) == 1 and np.isfinite(run.history["loss"][0])
