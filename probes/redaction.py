"""Secrets never reach a log, a record, a report or an exception message.

Two layers, each catching what the other cannot: the known secret values (the client's
credentials and the secret environment variables) and a pattern for anything shaped like an
Anthropic key (`sk-ant-...`), e.g. a second key pasted into a trainer's output.

The secret variables are the loop's own (`SECRET_ENV_VARS`) and those a campaign names in
`secrets:` (e.g. `WANDB_API_KEY`). Trainers inherit none of them unless `trainer.pass_env`
names it, and the store masks their values in everything it records.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
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


def redact_value(value: Any, secrets: Iterable[str]) -> Any:
    """`value` with `redact` applied to every string inside it (dicts, lists, tuples; keys
    too). Anything else is returned as it is."""
    secrets = list(secrets)
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {redact_value(k, secrets): redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v, secrets) for v in value)
    return value


_KEY_PATTERN_BYTES = re.compile(_KEY_PATTERN.pattern.encode())


def redact_file(path: Path, secrets: Iterable[str]) -> bool:
    """Mask the secrets in a file the loop keeps (a trainer's log), byte for byte, so a log
    that is not UTF-8 stays as it was everywhere else. True when something was masked."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    masked = data
    for secret in _usable(secrets):
        masked = masked.replace(secret.encode(), b"[redacted]")
    masked = _KEY_PATTERN_BYTES.sub(b"sk-ant-[redacted]", masked)
    if masked == data:
        return False
    tmp = path.with_name(f".{path.name}.redacting")
    tmp.write_bytes(masked)
    os.replace(tmp, path)
    return True


def child_environment(
    base: Mapping[str, str],
    extra: Mapping[str, str],
    pass_env: Iterable[str] = (),
    secret_names: Iterable[str] = (),
) -> dict[str, str]:
    """The environment of a trainer subprocess: `base` without the secret variables (the
    loop's own and `secret_names`, unless named in `pass_env`), then `extra`."""
    keep = set(pass_env)
    withheld = set(SECRET_ENV_VARS) | set(secret_names)
    env = {k: v for k, v in base.items() if k not in withheld or k in keep}
    return {**env, **extra}
