"""Contrastive pretraining, SimCLR style (F3:682-686): two augmented views of every unlabelled image, an encoder
and a projection head, and the InfoNCE (NT-Xent) loss

    l_i = -log[ exp(sim(z_i, z_j) / tau) / sum_{k != i} exp(sim(z_i, z_k) / tau) ]

over the 2N projections of a batch (sim = cosine; z_j is the other view of the same image, every other view in
the batch is a negative), averaged over all 2N anchors.

    encoder = keras.Sequential([...])                 # images -> features (any backbone)
    history = pretrain_simclr(encoder, unlabelled_images, epochs=20, temperature=0.5)
    # then the transfer recipe: freeze or fine-tune `encoder` under a small classifier head on the few labels

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


def default_augmentation(seed: int = 0) -> keras.Sequential:
    """SimCLR's view generator, scaled to small images: random crop-and-resize (zoom), flip, translation,
    contrast and brightness jitter (keras preprocessing layers, active in training only)."""
    return keras.Sequential([
        keras.layers.RandomZoom((-0.3, 0.0), seed=seed),
        keras.layers.RandomFlip("horizontal", seed=seed + 1),
        keras.layers.RandomTranslation(0.1, 0.1, seed=seed + 2),
        keras.layers.RandomContrast(0.4, seed=seed + 3),
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
                    learning_rate: float = 1e-3, augmentation=None, projection_dim: int = 64, seed: int = 0) -> dict:
    """Pretrains `encoder` (images -> `[B, features]`) in place on unlabelled `images` (floats in [0, 1]).

    Returns `{"loss": per-epoch mean InfoNCE, "head": the projection head}`.
    """
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
    history = []
    for _ in range(epochs):
        history.append(float(np.mean([float(step(batch)) for batch in dataset])))
    return {"loss": history, "head": head}
