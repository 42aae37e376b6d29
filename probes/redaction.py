"""Secrets never reach a log, a record, a report or an exception message.

Two layers, each catching what the other cannot: the known secret values (the client's
credentials and the secret environment variables) and a pattern for anything shaped like an
Anthropic key (`sk-ant-...`), e.g. a second key pasted into a trainer's output.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

SECRET_ENV_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
"""Variables the loop holds secrets in; trainers inherit them only when asked (`pass_env`)."""

MIN_SECRET_LENGTH = 8
"""Shorter values are not masked: replacing "abc" everywhere would garble text, not hide a key."""

_KEY_PATTERN = re.compile(r"sk-ant-[A-Za-z0-9_\-]{6,}")


def _usable(values: Iterable[object]) -> list[str]:
    return [v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH]


def environment_secrets(names: Iterable[str] = ()) -> list[str]:
    """The values of the secret variables (and of `names`) set in this process."""
    return _usable(os.environ.get(name) for name in (*SECRET_ENV_VARS, *names))


def client_secrets(client: Any) -> list[str]:
    """Strings that must never be logged, stored or shown (the client's credentials and the
    secret environment variables)."""
    held = [getattr(client, "api_key", None), getattr(client, "auth_token", None)]
    return _usable(held) + environment_secrets()


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (and anything that looks like an Anthropic key) masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _KEY_PATTERN.sub("sk-ant-[redacted]", text)


def child_environment(
    base: Mapping[str, str], extra: Mapping[str, str], pass_env: Iterable[str] = ()
) -> dict[str, str]:
    """The environment of a trainer subprocess: `base` without the secret variables (unless
    named in `pass_env`), then `extra`."""
    keep = set(pass_env)
    env = {k: v for k, v in base.items() if k not in SECRET_ENV_VARS or k in keep}
    return {**env, **extra}
