"""Opening source files: plain or gzip-compressed, binary, with errors MedSpace understands."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import BinaryIO

from medspace.connectors.base import ConnectorError

_GZIP_MAGIC = b"\x1f\x8b"


def open_binary(path: Path) -> BinaryIO:
    """Open `path` for binary reading, transparently decompressing gzip (bulk exports are
    often `.ndjson.gz`). Raises `ConnectorError` when the file cannot be opened."""
    try:
        f: BinaryIO = path.open("rb")
    except FileNotFoundError:
        raise ConnectorError(f"{path}: file not found; check the path") from None
    except IsADirectoryError:
        raise ConnectorError(f"{path}: is a directory; pass a file, or use read_any") from None
    except OSError as exc:
        raise ConnectorError(
            f"{path}: cannot be read ({type(exc).__name__}); check its permissions"
        ) from None
    try:
        magic = f.read(2)
        f.seek(0)
    except OSError as exc:
        f.close()
        raise ConnectorError(f"{path}: cannot be read ({type(exc).__name__})") from None
    if magic == _GZIP_MAGIC:
        f.close()
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return f


def read_head(path: Path, size: int = 65536) -> bytes:
    """The first `size` bytes of the (decompressed) file, for format sniffing."""
    with open_binary(path) as f:
        try:
            return f.read(size)
        except (OSError, EOFError) as exc:
            raise ConnectorError(
                f"{path}: cannot be read ({type(exc).__name__}); is it a damaged gzip file?"
            ) from None
