"""No text that comes from a user file, a trainer, a model or the agent is read as rich markup
(issue 10, item 1): a lane choice `[/x]` used to crash `start` with MarkupError and leave the
session running, so that every `resume` and `status` crashed the same way."""

from __future__ import annotations

import sys
from pathlib import Path

from agent.store.store import Store
from tests.conftest import CAMPAIGN, FAKE_TRAINER, make_workspace
from tests.test_session import cli

HOSTILE = "[/x]"
STYLED = "[bold red]RED[/]"


def test_markup_in_choices_and_paths_prints_literally(tmp_path: Path) -> None:
    campaign = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    campaign = campaign.replace(
        "choices: [shuffle, reverse]", f"choices: [shuffle, '{HOSTILE}', '{STYLED}']"
    )
    # The workspace path itself holds markup too.
    workspace = make_workspace(tmp_path / "ws[/b]", campaign=campaign)
    code, out = cli("check", workspace=workspace)
    assert code == 0, out
    assert "ws[/b]" in out
    code, out = cli("start", "--budget", "9", "--force", workspace=workspace)
    assert code == 0, out
    store = Store(workspace)
    session = store.latest_session()
    assert session is not None and session.status == "finished"
    tried = {str(p.changes.get("curriculum")) for p in store.probes(session.id) if p.changes}
    assert {HOSTILE, STYLED} <= tried, tried  # the sweep reached both hostile choices
    code, out = cli("status", workspace=workspace)
    assert code == 0, out
    assert f"curriculum={HOSTILE}" in out and f"curriculum={STYLED}" in out
    hostile = next(p for p in store.probes(session.id) if p.changes.get("curriculum") == HOSTILE)
    code, out = cli("show", hostile.id, workspace=workspace)
    assert code == 0 and HOSTILE in out, out
