"""Packages whose public names load from their submodules on first use (PEP 562 module `__getattr__`).

`toolkit.export`, `toolkit.training`, `toolkit.serving` and `toolkit.models.pretrained` use it so that a light
submodule (the export-format table, the strategy and optimiser names `--help` lists, the serving client, the
weight sources) can be imported without TensorFlow.

Examples:
>>> import types
>>> package = types.ModuleType("demo")
>>> package.__getattr__, package.__dir__ = lazy_exports("demo", {"join": "os.path"})
>>> package.__getattr__("join")("a", "b")
'a/b'
>>> package.__getattr__("nope")
Traceback (most recent call last):
...
AttributeError: module 'demo' has no attribute 'nope'
"""

from __future__ import annotations

import importlib
import sys


def lazy_exports(package: str, exports: dict):
    """`(__getattr__, __dir__)` for `package`: `exports` maps a public name to the module that defines it
    (absolute, or relative to the package when it has no dot)."""

    def __getattr__(name):
        if name in exports:
            module = exports[name] if "." in exports[name] else f"{package}.{exports[name]}"
            return getattr(importlib.import_module(module), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        own = vars(sys.modules[package]) if package in sys.modules else {}
        return sorted(set(own) | set(exports))

    return __getattr__, __dir__
