"""mHC: residual streams mixed by a doubly-stochastic matrix kept on its manifold by Sinkhorn-Knopp.

The lecture notes (SEED_CATALOGUE.md section 9, F1:198-202) keep the residual mixing matrix W doubly stochastic
(rows and columns sum to 1) by alternately normalising rows and columns, so each stream is a convex combination of
streams and activations stay bounded however deep the stack. They give no iteration count, tolerance or positivity
transform: here positivity is exp (the iteration runs on logits, in log space, so it never overflows), and
`iterations` and `tolerance` are options. The layer follows DeepSeek's mHC ("Manifold-Constrained
Hyper-Connections", 2025): n streams x_l [.., n, d]; the block F reads `pre . x_l` and writes back
`post^T F(.)`, x_{l+1} = W x_l + post^T F(pre . x_l), with pre a softmax (a convex read) and post = 2 sigmoid.
W, pre and post are learned, static per layer (the paper's input-dependent part is left out).
"""

from __future__ import annotations

import keras
from keras import ops


def sinkhorn_knopp(logits, iterations: int = 20, tolerance: float = 1e-6):
    """The doubly-stochastic matrix Sinkhorn-Knopp makes of `exp(logits)` (rows, then columns, in log space).

    Stops after `iterations` or once every row sum is within `tolerance` of 1 (columns are exact after each
    step), whichever comes first.

    Examples:
    >>> import numpy as np
    >>> w = np.asarray(sinkhorn_knopp(np.array([[0.0, 2.0], [1.0, -1.0]])))
    >>> np.round(w.sum(axis=0), 6).tolist(), np.round(w.sum(axis=1), 6).tolist()
    ([1.0, 1.0], [1.0, 1.0])
    """
    log_w = ops.convert_to_tensor(logits, "float32")

    def step(log_w):
        log_w = log_w - ops.logsumexp(log_w, axis=-1, keepdims=True)  # rows sum to 1
        return log_w - ops.logsumexp(log_w, axis=-2, keepdims=True)   # columns sum to 1

    def row_error(log_w):
        return ops.max(ops.abs(ops.exp(ops.logsumexp(log_w, axis=-1)) - 1.0))

    def body(i, log_w, error):
        log_w = step(log_w)
        return i + 1, log_w, row_error(log_w)

    def cond(i, log_w, error):
        return ops.logical_and(i < iterations, error > tolerance)

    start = (ops.convert_to_tensor(0, "int32"), log_w, ops.convert_to_tensor(float("inf"), "float32"))
    _, log_w, _ = ops.while_loop(cond, body, start, maximum_iterations=iterations)
    return ops.exp(log_w)


@keras.saving.register_keras_serializable(package="toolkit")
class HyperConnection(keras.layers.Layer):
    """One residual block over `num_streams` streams: `x' = W x + post^T branch(pre . x)`, W doubly stochastic.

    Inputs are streams `[batch, ..., num_streams, dim]`; `branch` maps `[batch, ..., dim]` to the same shape
    (a Keras layer or model: the block's F). Expand a tensor into streams before the first block (copy it n
    times) and average them after the last.

    Args:
        branch: keras.Layer. the residual function F.
        num_streams: int. n, the number of residual streams (>= 1).
        iterations: int. Sinkhorn-Knopp iterations at most.
        tolerance: float. stop once every row sums to 1 within this.
        constrained: bool. False mixes with the unnormalised positive `exp(logits)` instead (the ablation:
            without the constraint, stacked mixing grows or shrinks activations geometrically).
        identity_init: float. initial diagonal of W's logits (a near-identity mixing at the start).

    Examples:
    >>> import numpy as np
    >>> block = HyperConnection(keras.layers.Dense(3), num_streams=2)
    >>> streams = np.ones((4, 2, 3), "float32")                 # batch 4, 2 streams of width 3
    >>> block(streams).shape
    TensorShape([4, 2, 3])
    >>> w = np.asarray(block.mixing_matrix())
    >>> np.allclose(w.sum(axis=0), 1, atol=1e-5) and np.allclose(w.sum(axis=1), 1, atol=1e-5)
    True
    """

    def __init__(self, branch, num_streams: int = 4, iterations: int = 20, tolerance: float = 1e-6,
                 constrained: bool = True, identity_init: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(branch, dict):
            branch = keras.saving.deserialize_keras_object(branch)
        if not isinstance(branch, keras.layers.Layer):
            raise ValueError(f"branch must be a Keras layer or model. Received: branch={branch!r}")
        if num_streams < 1:
            raise ValueError(f"num_streams must be >= 1. Received: num_streams={num_streams}")
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1. Received: iterations={iterations}")
        self.branch, self.num_streams = branch, num_streams
        self.iterations, self.tolerance = iterations, tolerance
        self.constrained, self.identity_init = constrained, identity_init

    def build(self, input_shape):
        n = self.num_streams
        if input_shape[-2] is not None and input_shape[-2] != n:
            raise ValueError(f"HyperConnection expects {n} streams on axis -2. Received: input_shape={input_shape}")
        diagonal = self.identity_init

        def eye(shape, dtype=None):
            return ops.eye(n, dtype=dtype) * diagonal

        self.mixing_logits = self.add_weight(name="mixing_logits", shape=(n, n), initializer=eye)
        self.pre_logits = self.add_weight(name="pre_logits", shape=(n,), initializer="zeros")
        self.post_logits = self.add_weight(name="post_logits", shape=(n,), initializer="zeros")
        if not self.branch.built:
            self.branch.build((*input_shape[:-2], input_shape[-1]))
        self.built = True

    def mixing_matrix(self):
        """W: doubly stochastic (Sinkhorn-Knopp) when `constrained`, else `exp(logits)`."""
        if self.constrained:
            return sinkhorn_knopp(self.mixing_logits, self.iterations, self.tolerance)
        return ops.exp(self.mixing_logits)

    def call(self, streams, training=None):
        dtype = streams.dtype
        pre = ops.cast(ops.softmax(self.pre_logits), dtype)
        post = ops.cast(2.0 * ops.sigmoid(self.post_logits), dtype)
        read = ops.einsum("...nd,n->...d", streams, pre)
        update = self.branch(read, training=training)
        mixed = ops.einsum("mn,...nd->...md", ops.cast(self.mixing_matrix(), dtype), streams)
        return mixed + ops.expand_dims(update, -2) * ops.reshape(post, (self.num_streams, 1))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "branch": keras.saving.serialize_keras_object(self.branch),
                "num_streams": self.num_streams, "iterations": self.iterations, "tolerance": self.tolerance,
                "constrained": self.constrained, "identity_init": self.identity_init}
