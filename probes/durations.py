"""Durations written like `90s`, `30m`, `2h` (or a bare number of seconds)."""

from __future__ import annotations

import math
import re

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(value: str | int | float) -> float:
    """Return seconds for `90s`, `30m`, `2h`, `1.5h`, `1d` or a number of seconds.

    Raises ValueError with the expected format when the value cannot be read.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '90s', '30m' or '2h', got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _PATTERN.match(value)
        if not match:
            raise ValueError(f"expected a duration like '90s', '30m' or '2h', got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a duration must be positive and finite, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """Short human form: 45s, 12m30s, 2h05m."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
