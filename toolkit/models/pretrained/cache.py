"""Installs converted weights as the exact files `keras.applications` looks for in the Keras cache.

`keras.applications.MobileNet(weights="imagenet")` calls `keras.utils.get_file(NAME, URL,
cache_subdir="models")`, which uses `$KERAS_HOME/models/NAME` (default `~/.keras/models/`; `/tmp/.keras` when
that is not writable) without downloading when the file is there and no hash is given (MobileNet and
MobileNetV2 give none). So writing the converted weights under those names makes `weights="imagenet"` work
offline, unchanged. Each file name encodes the input side; the weights do not depend on it, so one file is
written per (top / no top) and the other sides are symlinked to it. A `toolkit-weights.json` manifest beside
them records which source each file came from.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

from toolkit.models.pretrained.sources import SOURCES, Source, is_available, locate, read_member

MANIFEST = "toolkit-weights.json"


def keras_cache_dir() -> str:
    """The folder keras.applications reads weights from (mirrors `keras.utils.get_file`)."""
    if "keras" in sys.modules:  # Keras fixed its home at import: use what it uses
        from keras.src.backend import config

        home = config.keras_home()
    elif "KERAS_HOME" in os.environ:
        home = os.environ["KERAS_HOME"]
    else:
        user = os.path.expanduser("~")
        home = os.path.join(user if os.access(user, os.W_OK) else "/tmp", ".keras")
    base = os.path.expanduser(home)
    try:
        os.makedirs(base, exist_ok=True)  # get_file falls back to /tmp/.keras for a folder that is not there
    except OSError:
        pass
    if not os.access(base, os.W_OK):
        base = os.path.join("/tmp", ".keras")
    return os.path.join(base, "models")


def keras_file_names(backbone: str, include_top: bool, sizes) -> list:
    """The cache file names keras.applications uses for `backbone` (alpha 1.0) at each input side."""
    names = []
    for side in sizes:
        if backbone == "MobileNet":
            names.append(f"mobilenet_1_0_{side}_tf{'' if include_top else '_no_top'}.h5")
        elif backbone == "MobileNetV2":
            names.append(f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{side}{'' if include_top else '_no_top'}.h5")
        else:
            raise ValueError(f"no cache file naming known for backbone {backbone!r}")
    return names


def resolve(name: str) -> Source:
    """A source by its name or by the backbone it provides (`MobileNet`, `MobileNetV2`)."""
    if name in SOURCES:
        return SOURCES[name]
    matches = [s for s in SOURCES.values() if s.backbone.lower() == name.lower()]
    if matches:
        return matches[0]
    raise KeyError(f"unknown weights source {name!r}: known {sorted(SOURCES)} "
                   f"(or a backbone: {sorted({s.backbone for s in SOURCES.values()})})")


def _link_or_copy(target: str, link: str) -> None:
    if os.path.lexists(link):
        os.remove(link)
    try:
        os.symlink(os.path.basename(target), link)
    except OSError:
        import shutil

        shutil.copyfile(target, link)


def _read_manifest(directory: str) -> dict:
    try:
        with open(os.path.join(directory, MANIFEST)) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def install(name: str, cache_dir: str | None = None, force: bool = False) -> dict:
    """Converts source `name` and writes it under the Keras cache names of its backbone.

    Args:
        name: a key of `SOURCES` or the backbone it provides.
        cache_dir: defaults to `keras_cache_dir()` (what keras.applications reads).
        force: rewrite even when the manifest says the files are there.

    Returns:
        the manifest entry: `{"source", "backbone", "files", "provenance", "package", "seconds"}`.
    """
    source = resolve(name)
    directory = cache_dir or keras_cache_dir()
    os.makedirs(directory, exist_ok=True)
    manifest = _read_manifest(directory)
    entry = manifest.get(source.name)
    if entry and not force and all(os.path.exists(os.path.join(directory, f)) for f in entry["files"]):
        return {**entry, "already_installed": True}
    from toolkit.models.pretrained import convert

    start = time.perf_counter()
    located = locate(source)
    data = read_member(source)
    model = getattr(convert, source.converter)(data)
    files = []
    tops = (True, False) if source.include_top else (False,)
    for include_top in tops:
        names = keras_file_names(source.backbone, include_top, source.sizes)
        primary = os.path.join(directory, names[-1])  # the largest side (224) holds the data
        if include_top:
            part = model
        else:
            import keras

            cut = model.get_layer("conv_pw_13_relu").output if source.backbone == "MobileNet" else model.output
            part = keras.Model(model.input, cut)
        temporary = primary + ".tmp"
        convert.write_legacy_h5(part, temporary)
        os.replace(temporary, primary)
        for other in names[:-1]:
            _link_or_copy(primary, os.path.join(directory, other))
        files.extend(names)
    entry = {"source": source.name, "backbone": source.backbone, "package": source.requirement,
             "from": located, "files": files, "provenance": source.provenance,
             "include_top": source.include_top, "seconds": round(time.perf_counter() - start, 1)}
    manifest = _read_manifest(directory)
    manifest[source.name] = entry
    with open(os.path.join(directory, MANIFEST + ".tmp"), "w") as handle:
        json.dump(manifest, handle, indent=2)
    os.replace(os.path.join(directory, MANIFEST + ".tmp"), os.path.join(directory, MANIFEST))
    return entry


def installed(cache_dir: str | None = None) -> list:
    """One row per known source: `name, backbone, package, available (package here), installed, provenance`."""
    directory = cache_dir or keras_cache_dir()
    manifest = _read_manifest(directory)
    rows = []
    for source in SOURCES.values():
        entry = manifest.get(source.name)
        present = bool(entry) and all(os.path.exists(os.path.join(directory, f)) for f in entry["files"])
        rows.append({**dataclasses.asdict(source), "requirement": source.requirement,
                     "available": is_available(source), "installed": present,
                     "files": entry["files"] if entry else [], "cache_dir": directory})
    return rows
