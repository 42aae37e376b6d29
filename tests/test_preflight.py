"""Preflight's `probe.min_prompts_per_category`: refused below it, accepted at and above it,
for the target and for a guard, whatever the minimum; an empty prompts file is refused."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent.campaign import Campaign, load_campaign
from agent.session import preflight
from tests.conftest import CAMPAIGN, FAKE_TRAINER, make_workspace, write_prompts

ENOUGH = 24  # tests/conftest.py's count for every category


def campaign_with(
    root: Path, counts: dict[str, int], *, min_prompts: int | None
) -> tuple[Campaign, Path]:
    text = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    if min_prompts is not None:
        text = text.replace(
            "  steps: 30\n", f"  steps: 30\n  min_prompts_per_category: {min_prompts}\n"
        )
    ws = make_workspace(root, campaign=text)
    prompts = ws / "probe-prompts.jsonl"
    write_prompts(prompts, counts)
    campaign = load_campaign(ws / "search_space.yaml")
    assert campaign.probe.min_prompts_per_category == (3 if min_prompts is None else min_prompts)
    return campaign, prompts


def problems_naming(report_problems: list[str], category: str) -> list[str]:
    return [p for p in report_problems if repr(category) in p]


CASES = [
    (minimum, have)
    for minimum in (3, 5)
    for have in sorted({1, 2, minimum - 1, minimum, minimum + 1})
]


@pytest.mark.parametrize(("minimum", "have"), CASES)
def test_a_guard_needs_min_prompts_per_category(tmp_path: Path, minimum: int, have: int) -> None:
    counts = {"facts": ENOUGH, "voice": have, "offtask": ENOUGH}
    campaign, prompts = campaign_with(tmp_path / "ws", counts, min_prompts=minimum)
    report = preflight(campaign, trainer=None)
    assert report.counts == counts
    named = problems_naming(report.problems, "voice")
    if have < minimum:
        assert not report.ok
        assert len(named) == 1, report.problems
        message = named[0]
        assert str(prompts) in message  # the file
        assert "guard category 'voice'" in message  # the role and the category
        assert f"has {have} eval prompt(s)" in message and f"at least {minimum}" in message
        assert "min_prompts_per_category" in message
        # The other categories have enough: only voice is named.
        assert problems_naming(report.problems, "facts") == []
        assert problems_naming(report.problems, "offtask") == []
    else:
        assert report.ok, report.problems
        assert named == []


@pytest.mark.parametrize(("minimum", "have"), CASES)
def test_the_target_needs_min_prompts_per_category(tmp_path: Path, minimum: int, have: int) -> None:
    counts = {"facts": have, "voice": ENOUGH, "offtask": ENOUGH}
    campaign, prompts = campaign_with(tmp_path / "ws", counts, min_prompts=minimum)
    report = preflight(campaign, trainer=None)
    named = problems_naming(report.problems, "facts")
    if have < minimum:
        assert len(named) == 1 and str(prompts) in named[0], report.problems
        assert "target category 'facts'" in named[0]
    else:
        assert report.ok, report.problems


@pytest.mark.parametrize("have", [1, 2, 3])
def test_the_default_minimum_is_three(tmp_path: Path, have: int) -> None:
    counts = {"facts": ENOUGH, "voice": ENOUGH, "offtask": have}
    campaign, _ = campaign_with(tmp_path / "ws", counts, min_prompts=None)
    report = preflight(campaign, trainer=None)
    assert report.ok == (have >= 3), report.problems


def test_a_missing_guard_category_is_refused(tmp_path: Path) -> None:
    campaign, prompts = campaign_with(
        tmp_path / "ws", {"facts": ENOUGH, "voice": ENOUGH}, min_prompts=3
    )
    report = preflight(campaign, trainer=None)
    named = problems_naming(report.problems, "offtask")
    assert len(named) == 1 and str(prompts) in named[0] and "has 0 eval prompt(s)" in named[0]


def test_every_short_category_is_named(tmp_path: Path) -> None:
    campaign, _ = campaign_with(
        tmp_path / "ws", {"facts": 2, "voice": 1, "offtask": ENOUGH}, min_prompts=3
    )
    report = preflight(campaign, trainer=None)
    assert len(problems_naming(report.problems, "facts")) == 1
    assert len(problems_naming(report.problems, "voice")) == 1
    assert problems_naming(report.problems, "offtask") == []


@pytest.mark.parametrize("content", ["", "\n\n", "   \n"])
def test_an_empty_prompts_file_is_refused(tmp_path: Path, content: str) -> None:
    campaign, prompts = campaign_with(tmp_path / "ws", {}, min_prompts=3)
    prompts.write_text(content)
    report = preflight(campaign, trainer=None)
    assert not report.ok
    # Whatever the wording, it names the file and says it holds nothing to judge on.
    clear = ("empty", "no eval prompts", "no prompts", "0 eval prompt")
    assert any(
        str(prompts) in p and any(word in p.lower() for word in clear) for p in report.problems
    ), report.problems


def test_a_misspelt_guard_category_gets_a_did_you_mean(tmp_path: Path) -> None:
    campaign, _ = campaign_with(
        tmp_path / "ws", {"facts": ENOUGH, "voice": ENOUGH, "off-task": ENOUGH}, min_prompts=3
    )
    report = preflight(campaign, trainer=None)
    named = problems_naming(report.problems, "offtask")
    assert len(named) == 1 and named[0].endswith("did you mean 'off-task'?")
    # A short category that exists is not "misspelt".
    campaign, _ = campaign_with(
        tmp_path / "ws2", {"facts": ENOUGH, "voice": 1, "offtask": ENOUGH}, min_prompts=3
    )
    assert all("did you mean" not in p for p in preflight(campaign, trainer=None).problems)
