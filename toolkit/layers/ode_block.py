"""ResNet as an ODE: one residual block is one Euler step of dy/dt = F(y); a weight-tied block takes N of them.

The lecture notes (SEED_CATALOGUE.md section 9, F1:188-197): y(t + h) = y(t) + h F(y(t)); with h = 1 that is
x_{l+1} = x_l + F(x_l), so depth is the number of steps, and a Neural ODE integrates over t in [0, 1]. This layer
reuses ONE F for all N steps (h = t_end / N): the depth of N residual blocks with the parameters of one.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="toolkit")
class EulerODEBlock(keras.layers.Layer):
    """`steps` forward-Euler steps of one weight-tied `branch` F over t in [0, t_end]: y <- y + h F(y).

    Args:
        branch: keras.Layer. F, mapping y to a tensor of y's shape.
        steps: int. N, the number of Euler steps (>= 1).
        t_end: float. the integration interval [0, t_end]; the step is h = t_end / N.

    Examples:
    >>> import numpy as np
    >>> f = keras.layers.Dense(2, use_bias=False, kernel_initializer="identity")   # F(y) = y: y(1) = e y(0)
    >>> y0 = np.ones((1, 2), "float32")
    >>> [round(float(EulerODEBlock(f, steps=n)(y0)[0, 0]), 4) for n in (1, 10, 1000)]   # (1 + 1/N)^N -> e
    [2.0, 2.5937, 2.7169]
    """

    def __init__(self, branch, steps: int = 4, t_end: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(branch, dict):
            branch = keras.saving.deserialize_keras_object(branch)
        if not isinstance(branch, keras.layers.Layer):
            raise ValueError(f"branch must be a Keras layer or model. Received: branch={branch!r}")
        if steps < 1:
            raise ValueError(f"steps must be >= 1. Received: steps={steps}")
        if t_end <= 0:
            raise ValueError(f"t_end must be > 0. Received: t_end={t_end}")
        self.branch, self.steps, self.t_end = branch, steps, t_end

    @property
    def step_size(self) -> float:
        return self.t_end / self.steps

    def build(self, input_shape):
        if not self.branch.built:
            self.branch.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        y = inputs
        for _ in range(self.steps):  # unrolled: N is small, and a static graph XLA-compiles as it is
            y = y + self.step_size * self.branch(y, training=training)
        return y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "branch": keras.saving.serialize_keras_object(self.branch),
                "steps": self.steps, "t_end": self.t_end}
