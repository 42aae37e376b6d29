"""`autoresearch adopt PROBE`: write a confirmed change into search_space.yaml's recipe, so the
next session starts from the improved recipe.

ruamel.yaml's round-trip loader finds the line of each adopted key; only those lines are
rewritten (each with an end-of-line comment naming the probe, its effect and the value it
replaces, the line's old comment kept after it), so every other byte of the file stays as it
was. The edited text is validated as a campaign, and each adopted value must read back as
itself, before it is written (atomically): a failed adopt leaves the file untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.proposals import format_changes
from agent.store.store import Store
from agent.store.tables import ProbeRow
from agent.verdict import target_effect
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


def yaml_scalar(value: Any) -> str:
    """`value` as YAML that both YAML 1.1 (PyYAML) and 1.2 read back as the same type: a float
    in exponent form gets a decimal point (`3.0e-05`; `3e-05` is a string to PyYAML)."""
    import json
    import re

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text:
            mantissa, exponent = text.split("e")
            if "." not in mantissa:
                mantissa += ".0"
            text = f"{mantissa}e{exponent}"
        return text
    text = str(value)
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", text) and text.lower() not in {
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "null",
        "none",
        "y",
        "n",
        "~",
    }
    return text if plain else json.dumps(text)


def _continuation_lines(lines: list[str], line: int, column: int) -> list[int]:
    """The comment-only lines right below `line` whose `#` is in `column`: the same comment,
    continued (none when `line` has no comment, `column` -1)."""
    out: list[int] = []
    if column < 0:
        return out
    for i in range(line + 1, len(lines)):
        stripped = lines[i].lstrip(" ")
        if not stripped.startswith("#") or len(lines[i]) - len(stripped) != column:
            break
        out.append(i)
    return out


def adopt(store: Store, row: ProbeRow, campaign_path: Path) -> Adoption:
    """Write `row`'s confirmed change into `campaign_path`'s recipe (see the module doc).

    Only the adopted keys' lines change (a line is added for a key the recipe did not list):
    every other byte of the file, comments and blank lines included, stays as it was."""
    from ruamel.yaml import YAML

    from agent.campaign import CampaignError, parse_campaign

    kept = confirmed_row(store, row)
    changes = dict(kept.changes or {})
    if not changes:
        raise AdoptError(f"{row.id} changes nothing: there is nothing to adopt")
    text = read_user_text(campaign_path, "the campaign", AdoptError)
    data = YAML().load(text)  # round-trip: it knows the line of every key
    recipe = data.get("recipe") if hasattr(data, "get") else None
    if recipe is None or not hasattr(recipe, "lc"):
        raise AdoptError(f"{campaign_path}: no recipe section to adopt into")
    if recipe.fa.flow_style():
        raise AdoptError(
            f"{campaign_path}: the recipe is written inline ({{...}}); adopt edits a recipe "
            "written one key per line"
        )
    session = store.get_session(kept.session_id) if store is not None else None
    if session is not None:
        # The change was confirmed against that session's recipe: stacked on another one it
        # is an untested combination.
        measured = session.campaign.get("recipe", {})
        moved = sorted(
            k for k in set(measured) | set(recipe)
            if k not in changes and measured.get(k) != recipe.get(k)
        )  # fmt: skip
        if moved:
            raise AdoptError(
                f"{campaign_path}: the recipe changed since session {kept.session_id} confirmed "
                f"{format_changes(changes)} (now different: {', '.join(moved)}); a change is "
                "adopted only into the recipe it was measured against: run a session on the "
                "current recipe to test it there"
            )
    if all(k in recipe and recipe[k] == v for k, v in changes.items()):
        raise AdoptError(
            f"{format_changes(changes)} is already the recipe in {campaign_path}: nothing to do"
        )
    effect = target_effect(kept.verdict) or "confirmed"
    lines = text.splitlines(keepends=True)
    keys = list(recipe)
    indent = " " * recipe.lc.key(keys[0])[1] if keys else "  "
    previous: dict[str, Any] = {}
    added: list[str] = []
    dropped: set[int] = set()
    for key, value in changes.items():
        note = f"adopted from {kept.id} (session {kept.session_id}): {effect}"
        if key in recipe:
            previous[key] = recipe[key]
            line, column = recipe.lc.key(key)
            if recipe.lc.value(key)[0] != line or hasattr(recipe[key], "lc"):
                raise AdoptError(
                    f"{campaign_path}:{line + 1}: recipe.{key} spans several lines; edit it by hand"
                )
            old = lines[line].rstrip("\r\n")
            ending = lines[line][len(old) :] or "\n"
            comment = old.split("#", 1)[1].strip() if "#" in old else ""
            # A comment continued on the lines below (`#` in the same column) described the
            # old value too: it moves into the note with the rest, not left under the new one.
            below = _continuation_lines(lines, line, old.find("#")) if comment else []
            comment = " ".join([comment, *(lines[i].split("#", 1)[1].strip() for i in below)])
            dropped.update(below)
            was = f"; was {yaml_scalar(recipe[key])}" + (f" ({comment})" if comment else "")
            lines[line] = f"{old[:column]}{key}: {yaml_scalar(value)}  # {note}{was}{ending}"
        else:
            previous[key] = None
            added.append(f"{indent}{key}: {yaml_scalar(value)}  # {note}; was not set\n")
    insert_after = -1
    if added:
        last = max(recipe.lc.value(k)[0] for k in keys) if keys else recipe.lc.line
        # After the last key's continued comment, not between the key and it.
        insert_after = max([last, *_continuation_lines(lines, last, lines[last].find("#"))])
    out: list[str] = []
    for i, text_line in enumerate(lines):
        if i not in dropped:
            out.append(text_line)
        if i == insert_after:
            out.extend(added)
    edited = "".join(out)
    try:
        campaign = parse_campaign(edited, campaign_path)
    except CampaignError as exc:
        raise AdoptError(
            f"adopting {format_changes(changes)} would break the campaign: {exc}"
        ) from None
    wrong = {k: campaign.recipe.get(k) for k, v in changes.items() if campaign.recipe.get(k) != v}
    if wrong:  # never write a value that would read back as something else
        raise AdoptError(f"adopting {format_changes(changes)} would read back as {wrong}")
    write_text_whole(campaign_path, edited)
    return Adoption(kept.id, changes, previous, effect)
