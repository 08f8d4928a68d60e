"""A GGUF file's metadata, read from its header alone.

``memllm --version``, ``memllm doctor`` and every model load read the adapter's keys
(``memllm.protocol_version``, ``memllm.base_sha256``). The ``gguf`` package would
import numpy and map every tensor first; this reads the key-value section (a few
hundred bytes for an adapter) with ``struct`` and stops. Little-endian GGUF v2 and v3.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

from memllm_cli.errors import MemllmError

MAGIC = b"GGUF"
# value type -> struct format of a scalar (GGUF's gguf_type enum)
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?"}
_SCALARS |= {10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def read_metadata(path: Path) -> dict[str, Any]:
    """Every scalar and string key of ``path``'s header; arrays are skipped (``None``).

    Raises :class:`MemllmError` naming the file when it is not a GGUF file or is cut short.
    """
    try:
        with path.open("rb") as handle:
            return _read(handle)
    except OSError as exc:
        raise MemllmError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise MemllmError(f"{path} is not a readable GGUF file ({exc})") from None


def _read(handle: BinaryIO) -> dict[str, Any]:
    if handle.read(4) != MAGIC:
        raise ValueError("no GGUF magic")
    version = _unpack(handle, "<I")
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version}")
    _unpack(handle, "<Q")  # tensor count
    count = _unpack(handle, "<Q")
    metadata: dict[str, Any] = {}
    for _ in range(count):
        key = _string(handle)
        metadata[key] = _value(handle, _unpack(handle, "<I"))
    return metadata


def _unpack(handle: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = handle.read(size)
    if len(data) != size:
        raise ValueError("the file ends inside its header")
    return struct.unpack(fmt, data)[0]


def _string(handle: BinaryIO) -> str:
    length = _unpack(handle, "<Q")
    data = handle.read(length)
    if len(data) != length:
        raise ValueError("the file ends inside its header")
    return data.decode("utf-8")


def _value(handle: BinaryIO, kind: int) -> Any:
    if kind in _SCALARS:
        return _unpack(handle, _SCALARS[kind])
    if kind == _STRING:
        return _string(handle)
    if kind == _ARRAY:
        item, count = _unpack(handle, "<I"), _unpack(handle, "<Q")
        if item in _SCALARS:
            handle.seek(count * struct.calcsize(_SCALARS[item]), 1)
        else:
            for _ in range(count):
                _value(handle, item)
        return None
    raise ValueError(f"unknown value type {kind}")
