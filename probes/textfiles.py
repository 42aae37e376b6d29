"""Text files: reading the ones users write (prompts, manifests, data sources, scores), and
writing the loop's own whole or not at all.

A file that cannot be read, or is not UTF-8, is one clear error naming the file, the line and
column of the first bad byte and what to do — never a UnicodeDecodeError traceback.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_text_whole(path: Path, text: str) -> None:
    """Write `path` so that a reader or a kill sees the old file or the new one, never half
    of it (a temporary file beside it, then an atomic rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_user_text(path: Path, what: str, error: type[Exception]) -> str:
    """The UTF-8 text of `path` (`what` says what it is, e.g. "eval prompts"); any failure is
    raised as `error` with a message that names the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise error(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column}): "
            f"save {what} as UTF-8"
        ) from None
