"""Graph neural network layers on `(node features [N, F], adjacency [N, N])` (F3:1313-1337).

- `GCNConv`: Kipf & Welling's graph convolution H' = sigma(D^-1/2 (A + I) D^-1/2 H W), the degree matrix D of
  A + I (`gcn_normalize` builds the propagation matrix; the layer applies it to a sparse or dense adjacency).
- `MessagePassing`: the general form m_v = sum_{u in N(v)} M(h_v, h_u, e_uv), h'_v = U(h_v, m_v), with M and U
  single Dense layers on concatenations and e_uv the adjacency value (edge weight).

Adjacency convention: `adjacency[v, u] != 0` means u sends to v (row = receiver); an undirected graph is
symmetric. A `tf.SparseTensor` adjacency (`keras.Input((N,), sparse=True)`) costs O(edges); a dense one works too.
Written by hand: keras and keras-hub have no graph layers (TF-GNN / Spektral are separate, uninstalled packages).
"""

from __future__ import annotations

import keras
import numpy as np  # noqa: F401  (the doctests use it)


def _tf():
    import tensorflow as tf

    return tf


def gcn_normalize(adjacency):
    """D^-1/2 (A + I) D^-1/2 as a `tf.SparseTensor` (from a SparseTensor, a dense tensor or an array).

    >>> a = np.array([[0, 1], [1, 0]], "float32")
    >>> _tf().sparse.to_dense(gcn_normalize(a)).numpy().tolist()
    [[0.5, 0.5], [0.5, 0.5]]
    """
    tf = _tf()
    if not isinstance(adjacency, tf.SparseTensor):
        adjacency = tf.sparse.from_dense(tf.cast(adjacency, tf.float32))
    adjacency = tf.sparse.SparseTensor(adjacency.indices, tf.cast(adjacency.values, tf.float32),
                                       adjacency.dense_shape)
    n = adjacency.dense_shape[0]
    eye = tf.sparse.eye(n, dtype=tf.float32)
    # drop existing self loops (A + I needs exactly one per node), then add I
    off = tf.sparse.retain(adjacency, adjacency.indices[:, 0] != adjacency.indices[:, 1])
    a_hat = tf.sparse.reorder(tf.sparse.add(off, eye))
    degree = tf.sparse.reduce_sum(a_hat, axis=1)
    inv_sqrt = tf.math.rsqrt(tf.maximum(degree, 1e-12))
    rows, cols = a_hat.indices[:, 0], a_hat.indices[:, 1]
    values = a_hat.values * tf.gather(inv_sqrt, rows) * tf.gather(inv_sqrt, cols)
    return tf.SparseTensor(a_hat.indices, values, a_hat.dense_shape)


def _as_sparse(adjacency):
    tf = _tf()
    if isinstance(adjacency, tf.SparseTensor):
        return adjacency
    return tf.sparse.from_dense(tf.cast(adjacency, tf.float32))


@keras.saving.register_keras_serializable(package="toolkit")
class GCNConv(keras.layers.Layer):
    """Graph convolution: `(features [N, F], adjacency [N, N])` -> `sigma(D^-1/2 (A+I) D^-1/2 H W + b)` `[N, units]`.

    Args:
        units: output features per node.
        activation: sigma (None: linear).
        use_bias: add b.
        normalize: apply `gcn_normalize` to the adjacency in the call (False: the adjacency given is already
            the propagation matrix, e.g. normalised once with `gcn_normalize`).

    Examples:
    >>> layer = GCNConv(2, kernel_initializer="ones", use_bias=False)
    >>> h = np.array([[1.0], [3.0]], "float32")
    >>> layer(h, np.array([[0, 1], [1, 0]], "float32")).numpy().tolist()   # both nodes average to 2
    [[2.0, 2.0], [2.0, 2.0]]
    """

    def __init__(self, units: int, activation=None, use_bias: bool = True, normalize: bool = True,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if units < 1:
            raise ValueError(f"units must be >= 1. Received: units={units}")
        self.units, self.use_bias, self.normalize = int(units), bool(use_bias), bool(normalize)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, features_shape, adjacency_shape=None):
        self.kernel = self.add_weight(shape=(features_shape[-1], self.units), initializer=self.kernel_initializer,
                                      name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias") if self.use_bias else None

    def call(self, features, adjacency):
        tf = _tf()
        propagation = gcn_normalize(adjacency) if self.normalize else _as_sparse(adjacency)
        out = tf.sparse.sparse_dense_matmul(propagation, tf.matmul(tf.cast(features, self.compute_dtype),
                                                                   self.kernel))
        if self.bias is not None:
            out = out + self.bias
        return self.activation(out)

    def compute_output_shape(self, features_shape, adjacency_shape=None):
        return (*features_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias, "normalize": self.normalize,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@keras.saving.register_keras_serializable(package="toolkit")
class MessagePassing(keras.layers.Layer):
    """General message passing: m_v = sum_{u in N(v)} M(h_v, h_u, e_uv), h'_v = U(h_v, m_v).

    M = Dense(message_units, activation)([h_v, h_u, e_uv]) per edge (e_uv: the adjacency value), summed over each
    receiver's edges; U = Dense(units, activation)([h_v, m_v]).

    Args:
        units: output features per node.
        message_units: message size (default: units).
        activation: of M and U.
        aggregation: "sum" (the notes' form) or "mean" (sum / in-degree).

    Examples:
    >>> layer = MessagePassing(4, activation="relu")
    >>> h = np.ones((3, 2), "float32")
    >>> layer(h, np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], "float32")).shape
    TensorShape([3, 4])
    """

    def __init__(self, units: int, message_units: int | None = None, activation="relu", aggregation: str = "sum",
                 **kwargs):
        super().__init__(**kwargs)
        if aggregation not in ("sum", "mean"):
            raise ValueError(f"aggregation must be 'sum' or 'mean'. Received: {aggregation!r}")
        self.units, self.message_units = int(units), int(message_units or units)
        self.activation = keras.activations.get(activation)
        self.aggregation = aggregation
        self.message_fn = keras.layers.Dense(self.message_units, activation=self.activation, name="message")
        self.update_fn = keras.layers.Dense(self.units, activation=self.activation, name="update")

    def build(self, features_shape, adjacency_shape=None):
        f = features_shape[-1]
        self.message_fn.build((None, 2 * f + 1))
        self.update_fn.build((None, f + self.message_units))

    def call(self, features, adjacency):
        tf = _tf()
        h = tf.cast(features, self.compute_dtype)
        adjacency = _as_sparse(adjacency)
        receivers, senders = adjacency.indices[:, 0], adjacency.indices[:, 1]
        edge = tf.cast(adjacency.values, h.dtype)[:, None]
        messages = self.message_fn(tf.concat([tf.gather(h, receivers), tf.gather(h, senders), edge], axis=-1))
        n = tf.shape(h)[0]
        m = tf.math.unsorted_segment_sum(messages, receivers, n)
        if self.aggregation == "mean":
            count = tf.math.unsorted_segment_sum(tf.ones_like(edge), receivers, n)
            m = m / tf.maximum(count, 1.0)
        return self.update_fn(tf.concat([h, m], axis=-1))

    def compute_output_shape(self, features_shape, adjacency_shape=None):
        return (*features_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "message_units": self.message_units,
                "activation": keras.activations.serialize(self.activation), "aggregation": self.aggregation}
