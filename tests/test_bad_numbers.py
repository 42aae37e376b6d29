"""Issue 10, the numbers part: non-finite campaign numbers, argv placeholders with a
conversion or format, and budgets that are neither a whole count nor a duration with a unit
are refused with the key named (each case written out, seeded against the old behaviour)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent.campaign import CampaignError, parse_campaign
from agent.session import BudgetSpec
from tests.conftest import CAMPAIGN

GOOD = CAMPAIGN.format(python=sys.executable, trainer="train.py", timeout="60s")


def first_error(text: str) -> str:
    with pytest.raises(CampaignError) as info:
        parse_campaign(text, Path("/ws/search_space.yaml"))
    return str(info.value).splitlines()[0]


def test_the_good_campaign_parses() -> None:
    parse_campaign(GOOD, Path("/ws/search_space.yaml"))


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("timeout: 60s", "timeout: .inf", "probe.timeout"),  # would turn the timeout off
        ("timeout: 60s", "timeout: .nan", "probe.timeout"),
        ("  min_improvement: 0.3", "  min_improvement: .nan", "objective.min_improvement"),
        ("critical_below: 1.0", "critical_below: .nan", "objective.critical_below"),
        ("guard_tolerance: 1.0", "guard_tolerance: .inf", "objective.guard_tolerance"),
        ("high: 1.0e-2", "high: .inf", "lanes.hyperparameters.learning_rate.high"),
        ("learning_rate: 1.0e-3", "learning_rate: .nan", "recipe"),
    ],
)
def test_non_finite_numbers_are_refused(old: str, new: str, key: str) -> None:
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    message = first_error(text)
    assert message.startswith("/ws/search_space.yaml:") and f" {key}" in message, message
    assert "finite" in message


@pytest.mark.parametrize("placeholder", ["{config!r}", "{config:>300}", "{out_dir!s}"])
def test_argv_takes_exactly_the_known_placeholders(placeholder: str) -> None:
    text = GOOD.replace('"{config}"', f'"{placeholder}"', 1)
    assert text != GOOD
    message = first_error(text)
    assert "trainer" in message and "exactly {config}" in message, message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8", BudgetSpec(runs=8)),
        ("90m", BudgetSpec(seconds=5400.0)),
        ("1.5h", BudgetSpec(seconds=5400.0)),
    ],
)
def test_budgets_that_mean_what_they_say(text: str, expected: BudgetSpec) -> None:
    assert BudgetSpec.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("1.5", "whole number of trainings"),  # once read as 1.5 seconds
        ("0", "at least 1"),
        ("99999999999999999999999", "at most 1000000"),
        ("ten", "whole number of trainings"),
        ("inf", "whole number of trainings"),
    ],
)
def test_budgets_that_are_refused(text: str, words: str) -> None:
    with pytest.raises(ValueError) as info:
        BudgetSpec.parse(text)
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("  steps: 30", "  steps: 1000000000000000000000000000000", "probe.steps"),
        ("  steps: 30", "  steps: 30\n  seed: 99999999999999999999", "probe.seed"),
        ("  baseline_seeds: 3", "  baseline_seeds: 100000000000", "probe.baseline_seeds"),
        ("  eval_repeats: 1", "  eval_repeats: 100000000000", "probe.eval_repeats"),
    ],
)
def test_integers_the_database_cannot_hold_fail_check(old: str, new: str, key: str) -> None:
    """`steps: 10**30` used to pass `check`, then overflow SQLite in `start` and leave a
    session no `resume` could open (issue 10, item 5)."""
    message = first_error(GOOD.replace(old, new, 1))
    assert f": {key}: Input should be less than or equal to" in message
