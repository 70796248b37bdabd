"""Contrastive pretraining, SimCLR style (F3:682-686): two augmented views of every unlabelled image, an encoder
and a projection head, and the InfoNCE (NT-Xent) loss

    l_i = -log[ exp(sim(z_i, z_j) / tau) / sum_{k != i} exp(sim(z_i, z_k) / tau) ]

over the 2N projections of a batch (sim = cosine; z_j is the other view of the same image, every other view in
the batch is a negative), averaged over all 2N anchors.

    encoder = keras.Sequential([...])                 # images -> features (any backbone)
    history = pretrain_simclr(encoder, unlabelled_images, epochs=20, temperature=0.5)   # or max_seconds=...
    classifier = build_transfer_classifier(encoder, num_classes=10, freeze=True)        # linear probe
    classifier = build_transfer_classifier(encoder, num_classes=10)                     # fine-tune

Written by hand: keras / keras-hub ship no contrastive loss or SimCLR trainer. The training loop is a tape step
(not `fit`) because every step draws two augmentations of the same batch.
"""

from __future__ import annotations

import keras
import numpy as np


def info_nce(z_a, z_b, temperature: float = 0.5):
    """NT-Xent / InfoNCE of two views `[N, d]` (row i of `z_a` and row i of `z_b` are the positive pair).

    >>> z = np.eye(3, dtype="float32")
    >>> round(float(info_nce(z, z, temperature=0.1)), 4)   # positives identical, negatives orthogonal
    0.0001
    """
    import tensorflow as tf

    if temperature <= 0:
        raise ValueError(f"temperature must be > 0. Received: {temperature}")
    z = tf.math.l2_normalize(tf.concat([tf.cast(z_a, tf.float32), tf.cast(z_b, tf.float32)], axis=0), axis=-1)
    n = tf.shape(z_a)[0]
    logits = tf.matmul(z, z, transpose_b=True) / temperature
    logits = logits - 1e9 * tf.eye(2 * n)  # k != i: an anchor is not its own negative
    positives = tf.concat([tf.range(n, 2 * n), tf.range(0, n)], axis=0)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(positives, logits))


def default_augmentation(seed: int = 0, fill_mode: str = "constant") -> keras.Sequential:
    """SimCLR's view generator, scaled to small images in [0, 1]: random crop-and-resize (zoom in up to 30%),
    horizontal flip, translation (10%), contrast and brightness jitter (keras preprocessing layers, drawn per image,
    active in training only). `fill_mode="constant"` pads with 0 (a black background, as Fashion-MNIST's);
    `"reflect"` suits natural photos."""
    return keras.Sequential([
        keras.layers.RandomZoom((-0.3, 0.0), fill_mode=fill_mode, seed=seed),
        keras.layers.RandomFlip("horizontal", seed=seed + 1),
        keras.layers.RandomTranslation(0.1, 0.1, fill_mode=fill_mode, seed=seed + 2),
        keras.layers.RandomContrast(0.4, value_range=(0.0, 1.0), seed=seed + 3),
        keras.layers.RandomBrightness(0.2, value_range=(0.0, 1.0), seed=seed + 4),
    ], name="simclr_augmentation")


def build_projection_head(input_dim: int, hidden: int = 128, output_dim: int = 64) -> keras.Model:
    """SimCLR's g(.): Dense(relu) -> Dense, applied to the encoder's features (discarded after pretraining).

    >>> build_projection_head(16, 8, 4).output_shape
    (None, 4)
    """
    inputs = keras.Input((input_dim,))
    x = keras.layers.Dense(hidden, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(output_dim)(x), name="projection_head")


def pretrain_simclr(encoder, images, epochs: int = 10, batch_size: int = 128, temperature: float = 0.5,
                    learning_rate: float = 1e-3, augmentation=None, projection_dim: int = 64, seed: int = 0,
                    max_seconds: float | None = None) -> dict:
    """Pretrains `encoder` (images -> `[B, features]`) in place on unlabelled `images` (floats in [0, 1]).

    `max_seconds`: stop once this much wall-clock time has passed after the first step (graph tracing is not
    counted); the last, partial epoch's mean loss is kept. `epochs` stays an upper bound.

    Returns `{"loss": per-epoch mean InfoNCE, "head": the projection head, "steps": optimizer steps taken,
    "seconds": training wall-clock seconds after the first step}`.
    """
    import time

    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    images = np.asarray(images, "float32")
    if len(images) < 2:
        raise ValueError(f"contrastive pretraining needs at least 2 images (one positive, one negative). "
                         f"Received: {len(images)}")
    augmentation = augmentation or default_augmentation(seed)
    features = int(encoder(images[:1]).shape[-1])
    head = build_projection_head(features, output_dim=projection_dim)
    optimizer = keras.optimizers.Adam(learning_rate)
    variables = encoder.trainable_variables + head.trainable_variables

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            z_a = head(encoder(augmentation(batch, training=True), training=True), training=True)
            z_b = head(encoder(augmentation(batch, training=True), training=True), training=True)
            loss = info_nce(z_a, z_b, temperature)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    dataset = tf.data.Dataset.from_tensor_slices(images).shuffle(len(images), seed=seed).batch(
        batch_size, drop_remainder=len(images) >= 2 * batch_size)
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be > 0 (or None). Received: {max_seconds}")
    history, steps, start, out_of_time = [], 0, None, False
    for _ in range(epochs):
        losses = []
        for batch in dataset:
            losses.append(float(step(batch)))
            steps += 1
            if start is None:  # the clock starts after the first step (tracing is not training)
                start = time.perf_counter()
            elif max_seconds is not None and time.perf_counter() - start > max_seconds:
                out_of_time = True
                break
        history.append(float(np.mean(losses)))
        if out_of_time:
            break
    return {"loss": history, "head": head, "steps": steps,
            "seconds": time.perf_counter() - start if start else 0.0}


def build_transfer_classifier(encoder: keras.Model, num_classes: int, freeze: bool = False, dropout: float = 0.0,
                              name: str = "transfer_classifier") -> keras.Model:
    """The transfer recipe's classifier: `encoder` (images -> features) -> Dense(num_classes, softmax).
    `freeze=True` is the linear probe (only the Dense layer trains; the encoder also runs in inference mode, so
    its BatchNorm statistics stay as pretrained); `freeze=False` fine-tunes everything.

    >>> enc = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()])
    >>> build_transfer_classifier(enc, 3, freeze=True).output_shape
    (None, 3)
    """
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be >= 2. Received: {num_classes}")
    encoder.trainable = not freeze
    inputs = keras.Input(encoder.input_shape[1:], name="images")
    x = encoder(inputs, training=False) if freeze else encoder(inputs)
    x = keras.layers.Dropout(dropout)(x) if dropout else x
    outputs = keras.layers.Dense(int(num_classes), activation="softmax", dtype="float32", name="classes")(x)
    return keras.Model(inputs, outputs, name=name)
