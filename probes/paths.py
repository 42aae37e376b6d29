"""Which files a campaign may point at: inside its workspace, or under a root it declares.

A campaign's paths (the brief, the trainer's working folder, the eval prompts, the data
manifest and its sources) are resolved — `~`, `..` and symlinks — before the check, so a link
inside the workspace to /etc is outside it. Roots outside the workspace are listed in
`paths.allow`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def allowed_roots(workspace: Path, allow: Iterable[str]) -> list[Path]:
    """The workspace and each declared root (relative ones against the workspace), resolved."""
    roots = [workspace.resolve()]
    for root in allow:
        p = Path(root).expanduser()
        roots.append((p if p.is_absolute() else workspace / p).resolve())
    return roots


def outside(path: Path, roots: Iterable[Path]) -> bool:
    """True when `path`, resolved (symlinks included), is under none of `roots`."""
    real = path.expanduser().resolve()
    return not any(real == root or real.is_relative_to(root) for root in roots)


def refusal(path: Path, workspace: Path, key: str | None = None) -> str:
    """The message for a path outside every allowed root (`key` first, when the caller does
    not name it itself)."""
    real = path.expanduser().resolve()
    shown = f"{path} (-> {real})" if real != path else str(path)
    return (
        f"{key + ': ' if key else ''}{shown} is outside the workspace {workspace.resolve()}: "
        "add its folder to 'paths.allow' in search_space.yaml to use it"
    )
