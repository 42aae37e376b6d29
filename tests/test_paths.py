"""Campaign paths stay in the workspace unless `paths.allow` declares another root (issue 10):
the brief, trainer.cwd, the eval prompts, the data manifest and its sources. Paths are
resolved, symlinks included, before the check; a refusal names the path and the fix."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from agent.campaign import CampaignError, parse_campaign
from tests.conftest import CAMPAIGN, FAKE_TRAINER, write_prompts

ROOT = Path(__file__).resolve().parents[1]


def campaign_text(**replace: str) -> str:
    text = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text


@pytest.fixture
def places(tmp_path: Path) -> tuple[Path, Path]:
    ws, shared = tmp_path / "ws", tmp_path / "shared"
    ws.mkdir()
    shared.mkdir()
    write_prompts(shared / "prompts.jsonl")
    (shared / "brief.md").write_text("# brief\n")
    return ws, shared


@pytest.mark.parametrize(
    ("key", "old", "new"),
    [
        ("eval.prompts", "prompts: probe-prompts.jsonl", "prompts: {shared}/prompts.jsonl"),
        ("eval.prompts", "prompts: probe-prompts.jsonl", "prompts: ../shared/prompts.jsonl"),
        ("agent.brief", "brief: program.md", "brief: {shared}/brief.md"),
        ("trainer.cwd", "  timeout: 60s\neval", "  timeout: 60s\n  cwd: ../shared\neval"),
    ],
)
def test_a_path_outside_the_workspace_needs_paths_allow(
    places: tuple[Path, Path], key: str, old: str, new: str
) -> None:
    ws, shared = places
    path = ws / "search_space.yaml"
    text = campaign_text(**{old: new.format(shared=shared)})
    with pytest.raises(CampaignError) as info:
        parse_campaign(text, path)
    message = str(info.value)
    assert f": {key}: " in message and str(shared.resolve()) in message, message
    assert message.count(f"{key}:") == 1, message  # named once
    assert "outside the workspace" in message and "'paths.allow'" in message
    # Declared, it is allowed (absolute or relative to the workspace).
    for root in (str(shared), "../shared"):
        parse_campaign(text + f"paths:\n  allow: [{root}]\n", path)


def test_a_symlink_inside_the_workspace_to_outside_is_outside(places: tuple[Path, Path]) -> None:
    ws, shared = places
    (ws / "prompts.jsonl").symlink_to(shared / "prompts.jsonl")
    text = campaign_text(**{"prompts: probe-prompts.jsonl": "prompts: prompts.jsonl"})
    with pytest.raises(CampaignError) as info:
        parse_campaign(text, ws / "search_space.yaml")
    assert f"-> {(shared / 'prompts.jsonl').resolve()}" in str(info.value)
    # A file really in the workspace passes.
    write_prompts(ws / "probe-prompts.jsonl")
    parse_campaign(campaign_text(), ws / "search_space.yaml")


def test_a_data_source_outside_the_workspace_needs_paths_allow(tmp_path: Path) -> None:
    from agent.campaign import load_campaign
    from probes.trainers.trl import TrlTrainer

    ws, shared = tmp_path / "lab", tmp_path / "shared"
    ws.mkdir()
    shutil.copy(ROOT / "search_space.yaml", ws)
    shutil.copy(ROOT / "program.md", ws)
    shutil.copytree(ROOT / "data", ws / "data")
    shared.mkdir()
    shutil.move(ws / "data" / "sft" / "voice.jsonl", shared / "voice.jsonl")
    manifest = ws / "data" / "manifest.yaml"
    manifest.write_text(
        manifest.read_text().replace("path: sft/voice.jsonl", f"path: {shared}/voice.jsonl")
    )
    campaign = load_campaign(ws / "search_space.yaml")
    problems = TrlTrainer(campaign.trainer, campaign).preflight()  # type: ignore[arg-type]
    assert any(
        p.startswith("trainer.data: source 'voice': ") and str(shared) in p
        and "'paths.allow'" in p
        for p in problems
    ), problems  # fmt: skip
    (ws / "search_space.yaml").write_text(
        (ws / "search_space.yaml").read_text() + f"paths:\n  allow: [{shared}]\n"
    )
    campaign = load_campaign(ws / "search_space.yaml")
    problems = TrlTrainer(campaign.trainer, campaign).preflight()  # type: ignore[arg-type]
    assert not any("outside the workspace" in p for p in problems), problems
