"""Reading the text files users write (prompts, manifests, data sources, scores).

A file that cannot be read, or is not UTF-8, is one clear error naming the file, the line and
column of the first bad byte and what to do — never a UnicodeDecodeError traceback.
"""

from __future__ import annotations

from pathlib import Path


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
