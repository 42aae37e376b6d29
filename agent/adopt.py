"""`autoresearch adopt PROBE`: write a confirmed change into search_space.yaml's recipe, so the
next session starts from the improved recipe.

The file is edited in place with a round-trip YAML editor (ruamel.yaml): its comments, key
order and layout stay as they are; each adopted key gets an end-of-line comment naming the
probe, its effect and the value it replaces. The edited text is validated as a campaign before
it is written (atomically), so a failed adopt leaves the file untouched.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.proposals import format_changes
from agent.store.store import Store
from agent.store.tables import ProbeRow
from probes.textfiles import read_user_text, write_text_whole


class AdoptError(ValueError):
    """The probe cannot be adopted; the message says why and what to do."""


@dataclass(frozen=True)
class Adoption:
    """What `adopt` wrote."""

    probe_id: str
    changes: dict[str, Any]
    previous: dict[str, Any]
    comment: str


def confirmed_row(store: Store, row: ProbeRow) -> ProbeRow:
    """The row whose verdict confirms `row`'s change: itself when it is a kept confirmation or
    replay, else its confirmation child that was kept."""
    if row.status == "keep":
        return row
    if row.kind == "probe" and row.status == "candidate":
        for other in store.probes(row.session_id):
            if other.parent_id == row.id and other.kind == "confirm" and other.status == "keep":
                return other
    raise AdoptError(
        f"{row.id} is {row.status or row.state}: only a confirmed change (a keep) is adopted; "
        "`autoresearch status` shows which probes were kept"
    )


def adopt(store: Store, row: ProbeRow, campaign_path: Path) -> Adoption:
    """Write `row`'s confirmed change into `campaign_path`'s recipe (see the module doc)."""
    from ruamel.yaml import YAML

    from agent.campaign import CampaignError, parse_campaign

    kept = confirmed_row(store, row)
    changes = dict(kept.changes or {})
    if not changes:
        raise AdoptError(f"{row.id} changes nothing: there is nothing to adopt")
    text = read_user_text(campaign_path, "the campaign", AdoptError)
    yaml = YAML()  # round-trip: comments and layout are kept
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a user's long lines
    data = yaml.load(text)
    recipe = data.get("recipe") if hasattr(data, "get") else None
    if recipe is None:
        raise AdoptError(f"{campaign_path}: no recipe section to adopt into")
    previous = {k: recipe.get(k) for k in changes}
    if all(k in recipe and recipe[k] == v for k, v in changes.items()):
        raise AdoptError(
            f"{format_changes(changes)} is already the recipe in {campaign_path}: nothing to do"
        )
    verdict = kept.verdict or {}
    target = verdict.get("target", "target")
    effect = (
        f"{target} {verdict['target_delta']:+.2f} [{verdict['ci_low']:+.2f}, "
        f"{verdict['ci_high']:+.2f}]"
        if verdict.get("target_delta") is not None and verdict.get("ci_low") is not None
        else "confirmed"
    )
    for key, value in changes.items():
        was = "unset" if previous[key] is None and key not in recipe else repr(previous[key])
        recipe[key] = value
        recipe.yaml_add_eol_comment(
            f"adopted from {kept.id} (session {kept.session_id}): {effect}; was {was}", key
        )
    out = io.StringIO()
    yaml.dump(data, out)
    edited = out.getvalue()
    try:
        parse_campaign(edited, campaign_path)
    except CampaignError as exc:
        raise AdoptError(
            f"adopting {format_changes(changes)} would break the campaign: {exc}"
        ) from None
    write_text_whole(campaign_path, edited)
    return Adoption(kept.id, changes, previous, effect)
