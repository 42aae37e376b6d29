"""`agent.settings` is typed per policy (issue 10 item 5): a wrong type, a misspelt key or a
key the selected policy never reads is refused by `check` with the file, line and key —
never a traceback in `start` — and the policies read the typed values."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent.campaign import CampaignError, parse_campaign
from tests.conftest import CAMPAIGN, FAKE_TRAINER


def campaign_with(agent: str) -> str:
    text = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    return text.replace("agent:\n  policy: sweep\n  brief: program.md\n", agent)


def refused(text: str, path: Path) -> str:
    with pytest.raises(CampaignError) as info:
        parse_campaign(text, path)
    return str(info.value)


def test_settings_are_typed_and_read_by_the_policies(tmp_path: Path) -> None:
    from agent.policies.optuna import OptunaPolicy

    text = campaign_with(
        "agent:\n  policy: optuna\n  brief: program.md\n  settings:\n"
        "    plateau: 5\n    optuna_startup_trials: 2\n    seed: 11\n"
    )
    campaign = parse_campaign(text, tmp_path / "search_space.yaml")
    policy = OptunaPolicy(campaign, storage_dir=tmp_path)
    assert (policy.plateau, policy.startup_trials, policy.seed, policy.max_draws) == (5, 2, 11, 64)
    # Unset: the documented defaults (the sampler's seed is the probe seed).
    campaign = parse_campaign(campaign_with("agent:\n  policy: optuna\n"), tmp_path / "s.yaml")
    policy = OptunaPolicy(campaign, storage_dir=tmp_path / "b")
    assert (policy.plateau, policy.seed) == (3, campaign.probe.seed)


def test_claude_settings_reach_the_policy(tmp_path: Path) -> None:
    from agent.policies.claude import ClaudePolicy
    from agent.policies.sweep import SweepPolicy
    from agent.testing.fake_anthropic import FakeTransport, fake_client

    text = campaign_with(
        "agent:\n  policy: claude\n  settings:\n    max_tokens: 4096\n    api_retries: 1\n"
        "    prices:\n      claude-x: {input: 1.5, output: 7}\n"
    )
    campaign = parse_campaign(text, tmp_path / "search_space.yaml")
    client = fake_client(FakeTransport(handler=lambda body: None))  # never called here
    policy = ClaudePolicy(campaign, fallback=SweepPolicy(campaign), client=client)
    assert (policy.max_tokens, policy.api_retries) == (4096, 1)
    assert policy.prices == {"claude-x": {"input": 1.5, "output": 7.0}}


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("plateau: abc", "agent.settings.plateau: Input should be a valid integer"),
        ("plateau: 0", "plateau: Input should be greater than or equal to 1 (got 0)"),
        ("platau: 3", "agent.settings.platau: unknown key"),
        ("max_tokens: 4096", "'max_tokens' is a setting of the claude policy; agent.policy "
         "optuna never reads it"),
        ("timeout: forever", "agent.settings.timeout:"),
        ("prices: {claude-x: {input: 1}}", "agent.settings.prices.claude-x.output: required"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_with_file_line_and_key(
    tmp_path: Path, settings: str, expected: str
) -> None:
    path = tmp_path / "search_space.yaml"
    text = campaign_with(f"agent:\n  policy: optuna\n  settings:\n    {settings}\n")
    message = refused(text, path)
    line = text.splitlines().index(f"    {settings}") + 1
    assert message.startswith(f"{path}:{line}: "), message
    assert expected in message, message
    if "platau" in settings:
        assert "did you mean 'plateau'?" in message


def test_a_setting_of_the_fallback_is_accepted_and_one_of_no_policy_run_is_not(
    tmp_path: Path,
) -> None:
    path = tmp_path / "search_space.yaml"
    # claude falls back to optuna: optuna's settings are read in a claude session.
    parse_campaign(
        campaign_with("agent:\n  policy: claude\n  settings:\n    optuna_startup_trials: 2\n"), path
    )
    message = refused(campaign_with("agent:\n  policy: sweep\n  settings:\n    plateau: 2\n"), path)
    assert "'plateau' is a setting of the optuna and claude policies; agent.policy sweep" in message


def test_every_setting_names_the_policies_that_read_it() -> None:
    from agent.campaign import POLICIES_RUN, SETTING_POLICIES, AgentSettings

    # A setting added without its readers would fail `check` with a KeyError.
    assert set(SETTING_POLICIES) == set(AgentSettings.model_fields)
    known = {p for policies in POLICIES_RUN.values() for p in policies}
    assert all(set(readers) <= known for readers in SETTING_POLICIES.values())
