"""The contractive autoencoder: a penalty on the encoder's Jacobian, `lambda * ||d f(x) / d x||_F^2` (F3:12816).

Two ways to compute `||J_f(x)||_F^2 = sum_ij (d z_j / d x_i)^2`, chosen by `jacobian=`:
- `"closed_form"`: for a one-layer sigmoid encoder `z = sigmoid(W^T x + b)`, `d z_j / d x_i = z_j (1 - z_j) W_ij`,
  so `||J||_F^2 = sum_j (z_j (1 - z_j))^2 sum_i W_ij^2` (Rifai et al. 2011): one forward pass, no extra gradient;
- `"autodiff"`: `tf.GradientTape.batch_jacobian` of any encoder (`[B, k, d]` per batch: k backward passes,
  vectorised), the only choice for conv or deeper encoders.
`"auto"` (the default) takes the closed form when the encoder is Flatten -> one sigmoid Dense, else autodiff.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from toolkit.models.autoencoders.autoencoder import _Autoencoder

JACOBIANS = ("auto", "closed_form", "autodiff")


def sigmoid_dense_layer(encoder):
    """The encoder's Dense layer when the encoder is `Input -> [Flatten] -> Dense(sigmoid)`, else None."""
    layers = [layer for layer in encoder.layers if not isinstance(layer, (keras.layers.InputLayer,
                                                                            keras.layers.Flatten))]
    if len(layers) != 1 or not isinstance(layers[0], keras.layers.Dense):
        return None
    dense = layers[0]
    return dense if getattr(dense.activation, "__name__", "") == "sigmoid" else None


def sigmoid_jacobian_norm(z, kernel):
    """`||J||_F^2` per example for `z = sigmoid(x W + b)`: `sum_j (z_j (1 - z_j))^2 sum_i W_ij^2`.

    Examples:
    >>> z = tf.constant([[0.5]])                 # sigmoid'(0) = 0.25
    >>> float(sigmoid_jacobian_norm(z, tf.constant([[1.0], [2.0]]))[0])   # 0.25^2 * (1 + 4)
    0.3125
    """
    z = tf.cast(z, tf.float32)
    column_norms = tf.reduce_sum(tf.square(tf.cast(kernel, tf.float32)), axis=0)  # [k]
    return tf.reduce_sum(tf.square(z * (1.0 - z)) * column_norms, axis=-1)


def jacobian_norm(encoder, x, training=False):
    """`||d encoder(x) / d x||_F^2` per example by automatic differentiation (`batch_jacobian`)."""
    x = tf.convert_to_tensor(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = tf.cast(encoder(x, training=training), tf.float32)
    jacobian = tape.batch_jacobian(z, x)  # [B, k, *input shape]
    return tf.reduce_sum(tf.square(tf.reshape(jacobian, [tf.shape(x)[0], -1])), axis=-1)


@keras.saving.register_keras_serializable(package="toolkit")
class ContractiveAutoencoder(_Autoencoder):
    """Autoencoder with a Jacobian penalty: loss `||x - g(f(x))||^2 + contractive_weight * ||J_f(x)||_F^2`.

    The code changes little when the input moves a little off the data, so its reconstructions are robust to
    small perturbations (the notes: "robust to small input perturbations").

    Args:
        encoder, decoder, output_activation, pixel_scale: as for `UndercompleteAutoencoder`.
        contractive_weight: lambda, the penalty's weight.
        jacobian: `"auto"`, `"closed_form"` (one sigmoid Dense encoder only) or `"autodiff"` (see the module).

    Examples:
    >>> from toolkit.models.autoencoders import build_autoencoder
    >>> cae = build_autoencoder("contractive", (4, 4, 1), latent_dim=3, architecture="dense", hidden=(),
    ...                         latent_activation="sigmoid", contractive_weight=0.5)
    >>> cae.jacobian_method    # a single sigmoid Dense encoder: the closed form
    'closed_form'
    >>> x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 1)).astype("float32")
    >>> closed = cae.penalty(cae.scale(x), cae.encode(x))
    >>> bool(np.allclose(closed, 0.5 * jacobian_norm(cae.encoder, cae.scale(x)), rtol=1e-5))
    True
    """

    def __init__(self, encoder, decoder, output_activation="sigmoid", pixel_scale=255.0, contractive_weight=0.1,
                 jacobian="auto", **kwargs):
        super().__init__(encoder, decoder, output_activation=output_activation, pixel_scale=pixel_scale, **kwargs)
        if jacobian not in JACOBIANS:
            raise ValueError(f"jacobian must be one of {JACOBIANS}. Received: jacobian={jacobian!r}")
        if contractive_weight < 0:
            raise ValueError(f"contractive_weight must be >= 0. Received: contractive_weight={contractive_weight}")
        self._dense = sigmoid_dense_layer(encoder)
        if jacobian == "closed_form" and self._dense is None:
            raise ValueError("jacobian='closed_form' needs an encoder that is Flatten -> one sigmoid Dense layer "
                             "(build_dense_encoder(hidden=(), latent_activation='sigmoid')); use 'autodiff'. "
                             f"Received an encoder with layers {[layer.name for layer in encoder.layers]}")
        self.contractive_weight, self.jacobian = float(contractive_weight), jacobian
        self.jacobian_method = "closed_form" if (jacobian != "autodiff" and self._dense is not None) else "autodiff"

    def penalty(self, x, z, training=False):
        if self.jacobian_method == "closed_form":
            return self.contractive_weight * sigmoid_jacobian_norm(z, self._dense.kernel)
        return self.contractive_weight * jacobian_norm(self.encoder, x, training=training)

    def get_config(self):
        return {**super().get_config(), "contractive_weight": self.contractive_weight, "jacobian": self.jacobian}
