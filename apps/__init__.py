"""Task-level apps: train -> evaluate -> export -> predict, one module per task."""

import toolkit  # noqa: F401  (sets the Keras backend before anything imports keras)
