"""Which models to serve, which of their versions, and their version labels.

`ModelConfig` is one served model: its folder (`base_path`, holding `<version>/` folders), its version
policy (TF Serving's `ServableVersionPolicy`: `latest` N, `all`, or `specific` versions) and its labels
(`{"stable": 1, "canary": 2}`). `read_model_config_file` reads TF Serving's `--model_config_file` (a
text-format `tensorflow.serving.ModelServerConfig`) with the tensorflow-serving-api protos:

    model_config_list {
      config {
        name: "fashion"
        base_path: "savedmodels/fashion"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 1 versions: 2 } }
        version_labels { key: "stable" value: 1 }
        version_labels { key: "canary" value: 2 }
      }
    }
"""

from __future__ import annotations

import dataclasses
import os
import re

LABEL_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
POLICIES = ("latest", "all", "specific")


def validate_label(label) -> str:
    """A version label: 1-128 of letters, digits, `_ . -` (it is a URL path segment in `/labels/LABEL`)."""
    if not isinstance(label, str) or not LABEL_PATTERN.match(label):
        raise ValueError(f"invalid version label {label!r}: use 1-128 letters, digits, '_', '.', '-'")
    return label


@dataclasses.dataclass(frozen=True)
class VersionPolicy:
    """TF Serving's `ServableVersionPolicy`.

    Args:
        kind: `"latest"` (the newest `num_versions` versions), `"all"`, or `"specific"` (`versions`).
        num_versions: how many of the newest versions `latest` serves (TF Serving's default: 1).
        versions: the version numbers `specific` serves.

    Examples:
    >>> VersionPolicy("latest", num_versions=2).select([1, 2, 3])
    [2, 3]
    >>> VersionPolicy("specific", versions=(1, 3)).select([1, 2, 3])
    [1, 3]
    """

    kind: str = "latest"
    num_versions: int = 1
    versions: tuple = ()

    def __post_init__(self):
        if self.kind not in POLICIES:
            raise ValueError(f"version policy must be one of {POLICIES}. Received: {self.kind!r}")
        if self.kind == "latest" and self.num_versions < 1:
            raise ValueError(f"latest {{ num_versions }} must be >= 1. Received: {self.num_versions}")
        if self.kind == "specific" and not self.versions:
            raise ValueError("specific { versions } must name at least one version")
        if any(v < 0 for v in self.versions):
            raise ValueError(f"specific {{ versions }} must be non-negative. Received: {list(self.versions)}")

    def select(self, numbers) -> list:
        """The versions among `numbers` (those loadable on disk) this policy wants served, ascending."""
        numbers = sorted(numbers)
        if self.kind == "all":
            return numbers
        if self.kind == "specific":
            return [n for n in numbers if n in self.versions]
        return numbers[-self.num_versions:]

    def describe(self) -> str:
        if self.kind == "latest":
            return f"latest {self.num_versions}"
        if self.kind == "specific":
            return f"specific {sorted(self.versions)}"
        return "all"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One served model.

    Args:
        name: the model name clients use (`/v1/models/NAME`).
        base_path: its folder of `<version>/` SavedModel folders.
        policy: a `VersionPolicy`.
        labels: `{label: version}`; `/v1/models/NAME/labels/LABEL` and gRPC `model_spec.version_label`.
    """

    name: str
    base_path: str
    policy: VersionPolicy = VersionPolicy()
    labels: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        from toolkit.serving.repository import validate_name

        validate_name(self.name)
        for label, version in self.labels.items():
            validate_label(label)
            if not isinstance(version, int) or version < 0:
                raise ValueError(f"model {self.name!r}: label {label!r} must map to a version >= 0, got {version!r}")
            if self.policy.kind == "specific" and version not in self.policy.versions:
                raise ValueError(f"model {self.name!r}: label {label!r} names version {version}, which its policy "
                                 f"specific {sorted(self.policy.versions)} never serves")


def policy_from_proto(proto) -> VersionPolicy:
    """`tensorflow.serving.FileSystemStoragePathSourceConfig.ServableVersionPolicy` -> `VersionPolicy`."""
    choice = proto.WhichOneof("policy_choice")
    if choice is None or choice == "latest":
        return VersionPolicy("latest", num_versions=proto.latest.num_versions or 1)
    if choice == "all":
        return VersionPolicy("all")
    return VersionPolicy("specific", versions=tuple(sorted(set(proto.specific.versions))))


def parse_model_config(text: str, source: str = "<model config>") -> list:
    """A text-format `ModelServerConfig` -> `[ModelConfig, ...]`; ValueError naming `source` and the field.

    Examples:
    >>> [c] = parse_model_config('model_config_list { config { name: "m" base_path: "/models/m" '
    ...                          'version_labels { key: "stable" value: 3 } } }')
    >>> c.name, c.policy.describe(), c.labels
    ('m', 'latest 1', {'stable': 3})
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    try:
        proto = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as error:
        raise ValueError(f"{source}: not a text-format tensorflow.serving.ModelServerConfig: {error}") from None
    kind = proto.WhichOneof("config")
    if kind != "model_config_list":
        raise ValueError(f"{source}: expected a 'model_config_list {{ config {{ ... }} }}' block"
                         + (f", got {kind!r}" if kind else ""))
    configs, seen = [], set()
    for index, entry in enumerate(proto.model_config_list.config):
        where = f"{source}: config #{index + 1}" + (f" (name {entry.name!r})" if entry.name else "")
        if not entry.name:
            raise ValueError(f"{where}: 'name' is required")
        if not entry.base_path:
            raise ValueError(f"{where}: 'base_path' is required")
        if entry.model_platform not in ("", "tensorflow"):
            raise ValueError(f"{where}: model_platform {entry.model_platform!r} is not supported (only 'tensorflow')")
        if entry.name in seen:
            raise ValueError(f"{where}: model name {entry.name!r} appears twice")
        seen.add(entry.name)
        try:
            configs.append(ModelConfig(entry.name, entry.base_path, policy_from_proto(entry.model_version_policy),
                                       dict(entry.version_labels)))
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    if not configs:
        raise ValueError(f"{source}: model_config_list has no 'config' entries")
    return configs


def read_model_config_file(path: str) -> list:
    """Reads TF Serving's `--model_config_file` (text-format ModelServerConfig) -> `[ModelConfig, ...]`.

    Relative `base_path`s are taken relative to the current folder, as TF Serving does.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model config file {path!r} does not exist")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return parse_model_config(text, source=path)
