"""Names of the tf.distribute strategies `toolkit.training.distribution.get_strategy` builds.

Kept free of TensorFlow imports: every app's `--strategy` choices (and so `toolkit <task> --help`) read them.
"""

STRATEGIES = ("auto", "one-device", "mirrored", "multi-worker", "tpu")
