"""Task specs: each task's Config dataclass, name, description and model kinds, without TensorFlow.

`toolkit <task> --help` is built from these alone; the task's `App` (`apps/<task>.py`, which imports
TensorFlow) subclasses its spec and is imported only when a command runs.
"""
