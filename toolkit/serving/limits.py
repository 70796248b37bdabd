"""Bounds on the work one request may cause, and the checks that enforce them before the work is done.

Every limit has a `toolkit serve` flag; a request over a limit is answered with a status that names it
(`LimitError.status`: 413 for sizes, 400 for JSON depth, 503 when the queue is full, 504 for time).
- image headers: PNG, JPEG, GIF, BMP and WebP dimensions are read from the first bytes (no decoding), so
  a 300 KB PNG that would decode to 10000x10000 pixels is refused before TensorFlow allocates anything;
- Host / Origin: a server on loopback answers only requests addressed to loopback (or `--allowed-hosts`),
  so a web page cannot reach it through DNS rebinding or post to it from another origin;
- paths: error messages shown to clients never carry absolute paths of the server's disk.
"""

from __future__ import annotations

import dataclasses
import os
import re
import struct

MiB = 1024 * 1024


class LimitError(ValueError):
    """A request over a limit; `.status` is the HTTP status, `.grpc_code` the gRPC status code name."""

    def __init__(self, message: str, status: int = 413, grpc_code: str = "INVALID_ARGUMENT"):
        super().__init__(message)
        self.status, self.grpc_code = status, grpc_code

    def __reduce__(self):  # raised in the parsing helper process: keep the status across pickling
        return LimitError, (str(self), self.status, self.grpc_code)


@dataclasses.dataclass
class Limits:
    """What one request may cost; each field is a `toolkit serve` flag (see `apps/serve.py`).

    Attributes:
        max_body_bytes: largest REST body (413), `--max-body-mb`.
        max_json_depth: deepest JSON nesting (400), `--max-json-depth` (at most 1000).
        max_image_pixels: largest width x height of one encoded image input (413), `--max-image-pixels`.
        rest_timeout_ms: REST inference deadline (504), `--rest-api-timeout-in-ms` (0: none).
        header_timeout_s: time a connection gets to send a request's headers (408), `--header-timeout`.
        body_timeout_s: time a request gets to send its body once headers are in (408), `--body-timeout`.
        idle_timeout_s: keep-alive connections idle longer are closed, `--idle-timeout`.
        max_header_bytes: largest request head (431), `--max-header-kb`.
        max_connections: concurrent REST connections/requests beyond which uvicorn answers 503, `--max-connections`.
        allowed_hosts: extra Host header names accepted besides loopback and the bound address, `--allowed-hosts`.
    """

    max_body_bytes: int = 16 * MiB
    max_json_depth: int = 100
    max_image_pixels: int = 16 * MiB  # 4096 x 4096
    rest_timeout_ms: int = 30_000  # TF Serving's rest_api_timeout_in_ms default
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    idle_timeout_s: float = 5.0
    max_header_bytes: int = 64 * 1024
    max_connections: int = 1000
    allowed_hosts: tuple = ()

    def __post_init__(self):
        if not 1 <= self.max_json_depth <= 1000:
            raise ValueError(f"max_json_depth must be in [1, 1000]. Received: {self.max_json_depth}")
        for name in ("max_body_bytes", "max_image_pixels", "max_header_bytes", "max_connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1. Received: {getattr(self, name)}")


# ---- encoded image dimensions ------------------------------------------------------------------------
def image_size(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, frames) of PNG / JPEG / GIF / BMP / WebP bytes from their header, or None.

    GIF frames are counted from the block structure (every frame decodes to width x height); other formats
    report 1.

    Examples:
    >>> import zlib
    >>> png = b"\\x89PNG\\r\\n\\x1a\\n" + b"\\x00\\x00\\x00\\rIHDR" + (10000).to_bytes(4, "big") * 2 + b"\\x08\\x02\\x00\\x00\\x00"
    >>> image_size(png)
    (10000, 10000, 1)
    >>> image_size(b"hello") is None
    True
    """
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) < 10:
        return None
    head = bytes(data[:32])
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return width, height, 1
    if head.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        width, height = struct.unpack("<HH", head[6:10])
        return width, height, _gif_frames(data)
    if head.startswith(b"BM") and len(data) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
        return abs(width), abs(height), 1
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return _webp_size(head)
    return None


def _jpeg_size(data) -> tuple[int, int, int] | None:
    index, end = 2, len(data)
    while index + 9 < end:
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            index += 2
            continue
        length = (data[index + 2] << 8) | data[index + 3]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            height, width = struct.unpack(">HH", bytes(data[index + 5:index + 9]))
            return width, height, 1
        if length < 2:
            return None
        index += 2 + length
    return None


def _gif_frames(data) -> int:
    """Image descriptors in a GIF (bounded walk over its blocks; malformed data counts what it saw)."""
    index, frames, end = 13, 0, len(data)
    if data[10] & 0x80:  # global colour table
        index += 3 * (2 ** ((data[10] & 7) + 1))
    while index < end:
        kind = data[index]
        if kind == 0x3B:  # trailer
            break
        if kind == 0x21:  # extension: label, then sub-blocks
            index += 2
        elif kind == 0x2C:  # image descriptor (+ local colour table), LZW code size, then sub-blocks
            frames += 1
            if index + 10 > end:
                break
            flags = data[index + 9]
            index += 10 + (3 * (2 ** ((flags & 7) + 1)) if flags & 0x80 else 0) + 1
        else:
            break
        while index < end and data[index]:
            index += data[index] + 1
        index += 1
    return max(frames, 1)


def _webp_size(head: bytes) -> tuple[int, int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height, 1
    if chunk == b"VP8 " and len(head) >= 30:
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF, 1
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 1
    return None


def check_image_pixels(arrays: dict, specs: dict, max_pixels: int) -> None:
    """LimitError (413) if any encoded image in a string input would decode to more than `max_pixels`."""
    for name, array in arrays.items():
        if specs[name].dtype != "string":
            continue
        for index, value in enumerate(array.reshape(-1)):
            size = image_size(value)
            if size is None:
                continue
            width, height, frames = size
            pixels = width * height * frames
            if pixels > max_pixels:
                what = f"{width}x{height}" + (f"x{frames} frames" if frames > 1 else "")
                raise LimitError(f"input '{name}' [{index}]: the image is {what} = {pixels} pixels, over the limit of "
                                 f"{max_pixels} decoded pixels per image (--max-image-pixels)", 413)


# ---- Host and Origin ---------------------------------------------------------------------------------
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARDS = ("0.0.0.0", "::", "")


def host_name(value: str) -> str:
    """`Host` header value -> the name without port or IPv6 brackets, lower case.

    Examples:
    >>> host_name("LocalHost:8501"), host_name("[::1]:8501"), host_name("example.com")
    ('localhost', '::1', 'example.com')
    """
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class HostCheck:
    """Which Host / Origin names a server accepts.

    Bound to loopback or a specific address: loopback names, that address, and `allowed`. Bound to a wildcard
    (0.0.0.0 / ::) with no `allowed`: any Host (the operator chose to expose it; use --auth-token), but a
    browser Origin must still name an accepted host or be absent. `allowed` may hold `*` (anything) or
    `.example.com` (the domain and its subdomains).

    Examples:
    >>> check = HostCheck("127.0.0.1")
    >>> check.host_ok("127.0.0.1:8501"), check.host_ok("localhost"), check.host_ok("evil.example:8501")
    (True, True, False)
    >>> check.origin_ok("http://evil.example"), check.origin_ok("http://localhost:8501")
    (False, True)
    """

    def __init__(self, bound_host: str, allowed=()):
        self.allowed = {a.strip().lower() for a in allowed if a.strip()}
        self.any_host = "*" in self.allowed or (bound_host in WILDCARDS and not self.allowed)
        self.names = set(LOOPBACK_NAMES) | self.allowed
        if bound_host not in WILDCARDS:
            self.names.add(host_name(bound_host))

    def _match(self, name: str) -> bool:
        if name in self.names or "*" in self.allowed:
            return True
        return any(a.startswith(".") and (name.endswith(a) or name == a[1:]) for a in self.allowed)

    def host_ok(self, value: str | None) -> bool:
        return value is None or self.any_host or self._match(host_name(value))

    def origin_ok(self, value: str | None) -> bool:
        if value is None or self.any_host and not self.allowed:
            return True
        match = re.match(r"^[a-z][a-z0-9+.-]*://([^/]+)", value.strip().lower())
        return bool(match) and self._match(host_name(match.group(1)))


# ---- paths in messages -------------------------------------------------------------------------------
_ABSOLUTE = re.compile(r"(?<![\w.])/(?:[^\s'\"():,;]+/)+[^\s'\"():,;]*")


def model_roots(repository) -> list:
    """The folders whose paths error messages show relative: the base path, each configured model's parent."""
    roots = [repository.base_path] if getattr(repository, "base_path", None) else []
    return roots + [os.path.dirname(os.path.abspath(p)) for p in getattr(repository, "fixed", {}).values()]


def redact_paths(message: str, roots=()) -> str:
    """Replaces absolute paths in a client-facing message: under a root by the path relative to it, else by
    the last path component.

    Examples:
    >>> redact_paths("cannot read /srv/models/tiny/3/saved_model.pb", ["/srv/models"])
    'cannot read tiny/3/saved_model.pb'
    >>> redact_paths("No such file: '/home/me/x/variables/variables.index'")
    "No such file: '.../variables.index'"
    """
    if not message or "/" not in message:
        return message
    roots = sorted({os.path.abspath(r).rstrip("/") for r in roots if r}, key=len, reverse=True)

    def replace(match):
        path = match.group(0)
        for root in roots:
            if path == root or path.startswith(root + "/"):
                return path[len(root) + 1:] or "."
        return ".../" + path.rstrip("/").rsplit("/", 1)[-1]

    return _ABSOLUTE.sub(replace, message)
