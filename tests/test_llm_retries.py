"""The one retry layer of every Anthropic call (probes/llm.py `call_with_retries`), through the
real SDK client and a scripted transport: what the server says about retrying is obeyed, the
spend-limit 429s are never retried, and a logical call makes at most 1 + api_retries requests
whatever `max_retries` the client it was handed had."""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agent.campaign import Campaign, CampaignError, parse_campaign
from agent.policies.claude import ClaudePolicy
from agent.testing.fake_anthropic import (
    TEST_API_KEY,
    FakeTransport,
    error_reply,
    fake_client,
    text_message,
)
from probes.llm import MAX_SERVER_WAIT, call_with_retries

JITTER = 0.25
"""Backoff (when the server names no wait) is drawn in [(1 - JITTER) x, x]."""


def within_backoff(sleeps: Sequence[float], nominal: Sequence[float]) -> bool:
    """Each wait is its nominal backoff, less at most the jitter."""
    return len(sleeps) == len(nominal) and all(
        (1 - JITTER) * n - 1e-9 <= s <= n + 1e-9 for s, n in zip(sleeps, nominal, strict=True)
    )


def create_call(transport: FakeTransport, *, max_retries: int = 0) -> Any:
    client = fake_client(transport, max_retries=max_retries)

    def call() -> Any:
        return client.messages.create(
            model="claude-sonnet-5-5",
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
        )

    return call


def run(transport: FakeTransport, *, retries: int = 4, **kw: Any) -> tuple[Any, list[float]]:
    sleeps: list[float] = []
    out = call_with_retries(create_call(transport, **kw), retries=retries, sleep=sleeps.append)
    return out, sleeps


def test_backoff_doubles_from_2s_with_bounded_jitter_and_caps_at_60s() -> None:
    overloaded = error_reply(529, "overloaded_error", "Overloaded")
    transport = FakeTransport([overloaded] * 7 + [text_message("ok")])
    _, sleeps = run(transport, retries=7)
    assert within_backoff(sleeps, [2, 4, 8, 16, 32, 60, 60])
    transport.check()


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after": "120"}, 120.0),  # longer than the backoff cap: honoured in full
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the ms header wins
        ({"retry-after": "0.5"}, 0.5),
    ],
)
def test_the_servers_wait_is_honoured(headers: dict[str, str], wait: float) -> None:
    transport = FakeTransport(
        [error_reply(429, "rate_limit_error", "slow down", headers=headers), text_message("ok")]
    )
    _, sleeps = run(transport)
    assert sleeps == [pytest.approx(wait)]
    transport.check()


def test_retry_after_as_an_http_date() -> None:
    when = email.utils.formatdate(time.time() + 200, usegmt=True)
    transport = FakeTransport(
        [error_reply(503, "api_error", "busy", headers={"retry-after": when}), text_message("ok")]
    )
    _, sleeps = run(transport)
    assert len(sleeps) == 1 and 190 <= sleeps[0] <= 201


def test_a_wait_longer_than_we_wait_fails_at_once() -> None:
    import anthropic

    asked = str(int(MAX_SERVER_WAIT) + 60)
    transport = FakeTransport(
        [error_reply(429, "rate_limit_error", "slow down", headers={"retry-after": asked})]
    )
    with pytest.raises(anthropic.RateLimitError):
        run(transport)
    assert len(transport.requests) == 1
    transport.check()


def test_the_waits_of_one_call_add_up_to_at_most_half_an_hour() -> None:
    import anthropic

    slow = error_reply(429, "rate_limit_error", "later", headers={"retry-after": "900"})
    transport = FakeTransport(handler=lambda _request: slow)
    with pytest.raises(anthropic.RateLimitError):
        run(transport, retries=10)
    assert len(transport.requests) == 3  # waited 900 + 900 s; a third wait would pass 1800


def test_retry_after_zero_backs_off_as_the_sdk_does() -> None:
    zero = error_reply(529, "overloaded_error", "busy", headers={"retry-after": "0"})
    transport = FakeTransport([zero, zero, text_message("ok")])
    _, sleeps = run(transport)
    assert within_backoff(sleeps, [2, 4])


def test_x_should_retry_false_is_obeyed_on_a_retryable_status() -> None:
    import anthropic

    transport = FakeTransport(
        [error_reply(529, "overloaded_error", "no", headers={"x-should-retry": "false"})]
    )
    with pytest.raises(anthropic.APIStatusError):
        run(transport)
    assert len(transport.requests) == 1


def test_x_should_retry_true_is_obeyed_on_a_status_we_would_not_retry() -> None:
    transport = FakeTransport(
        [
            error_reply(
                400, "invalid_request_error", "try again", headers={"x-should-retry": "true"}
            ),
            text_message("ok"),
        ]
    )
    reply, sleeps = run(transport)
    assert reply.content[0].text == "ok" and within_backoff(sleeps, [2])


@pytest.mark.parametrize("code", ["enforced_spend_limit_reached", "contract_spend_limit_reached"])
def test_spend_limit_429s_are_never_retried(code: str) -> None:
    import anthropic

    # Even a server that says "retry" does not cure a spend limit.
    spent = error_reply(
        429, "rate_limit_error", "limit", error_code=code, headers={"x-should-retry": "true"}
    )
    transport = FakeTransport([spent])
    with pytest.raises(anthropic.RateLimitError):
        run(transport)
    assert len(transport.requests) == 1


@pytest.mark.parametrize("sdk_retries", [0, 2, 5])
def test_one_layer_whatever_the_client_was_built_with(tmp_path: Path, sdk_retries: int) -> None:
    """A persistent overload costs the policy 1 + api_retries requests, not (1 + ours) x
    (1 + the SDK's): the client it is handed has its own retries switched off."""
    campaign = policy_campaign(tmp_path, api_retries=3)
    overloaded = error_reply(529, "overloaded_error", "Overloaded")
    transport = FakeTransport(handler=lambda _request: overloaded)
    sleeps: list[float] = []
    policy = ClaudePolicy(
        campaign,
        fallback=_Fallback(),
        client=fake_client(transport, max_retries=sdk_retries),
        sleep=sleeps.append,
    )
    policy.ask(_context(campaign))
    assert len(transport.requests) == 1 + 3
    assert {r.headers.get("x-stainless-retry-count") for r in transport.requests} == {"0"}
    assert within_backoff(sleeps, [2, 4, 8])


def test_the_judge_too_makes_one_request_per_retry() -> None:
    from probes.evaluation.judge import JudgeConfig, JudgeStatus, LLMJudge
    from probes.spec import EvalPrompt

    overloaded = error_reply(529, "overloaded_error", "Overloaded")
    transport = FakeTransport(handler=lambda _request: overloaded)
    sleeps: list[float] = []
    judge = LLMJudge(
        JudgeConfig(api_retries=2, max_attempts=1),
        client=fake_client(transport, max_retries=3),
        sleep=sleeps.append,
    )
    prompt = EvalPrompt(id="p1", category="voice", prompt="Write.", reference="A letter.")
    result = judge.score(prompt, "An answer.")
    assert result.status is JudgeStatus.JUDGE_ERROR
    assert len(transport.requests) == 1 + 2 and within_backoff(sleeps, [2, 4])


def test_the_judges_attempts_never_multiply_the_retries() -> None:
    """An API failure the retry layer gave up on is a judge_error at once: max_attempts is
    for unusable replies, not a second retry loop (3 x 5 requests, 3 x the waits)."""
    from probes.evaluation.judge import JudgeConfig, JudgeStatus, LLMJudge
    from probes.spec import EvalPrompt

    overloaded = error_reply(529, "overloaded_error", "Overloaded")
    transport = FakeTransport(handler=lambda _request: overloaded)
    sleeps: list[float] = []
    judge = LLMJudge(JudgeConfig(max_attempts=3), client=fake_client(transport),
                     sleep=sleeps.append)  # fmt: skip
    prompt = EvalPrompt(id="p1", category="voice", prompt="Write.", reference="A letter.")
    assert judge.score(prompt, "An answer.").status is JudgeStatus.JUDGE_ERROR
    assert len(transport.requests) == 1 + 4 and len(sleeps) == 4
    refused = error_reply(529, "overloaded_error", "no", headers={"x-should-retry": "false"})
    transport = FakeTransport(handler=lambda _request: refused)
    judge = LLMJudge(JudgeConfig(max_attempts=3), client=fake_client(transport),
                     sleep=sleeps.append)  # fmt: skip
    assert judge.score(prompt, "An answer.").status is JudgeStatus.JUDGE_ERROR
    assert len(transport.requests) == 1


def test_a_spend_limit_turns_claude_off_for_the_session_with_a_clear_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    campaign = policy_campaign(tmp_path, api_retries=4)
    spent = error_reply(
        429,
        "rate_limit_error",
        f"You have reached your usage limit {TEST_API_KEY}",
        error_code="enforced_spend_limit_reached",
    )
    transport = FakeTransport([spent])
    sleeps: list[float] = []
    fallback = _Fallback()
    policy = ClaudePolicy(
        campaign, fallback=fallback, client=fake_client(transport), sleep=sleeps.append
    )
    first = policy.ask(_context(campaign))
    second = policy.ask(_context(campaign))
    assert first.fallback_from == "claude" and second.fallback_from == "claude"
    assert len(transport.requests) == 1 and sleeps == []  # no retry, no second call
    reason = policy.disabled_reason or ""
    assert "enforced_spend_limit_reached" in reason and "spend limit reached" in reason
    assert TEST_API_KEY not in reason and TEST_API_KEY not in caplog.text


def test_a_search_space_naming_the_removed_sdk_setting_is_told_what_to_do(
    tmp_path: Path,
) -> None:
    text = policy_yaml(api_retries=2).replace(
        "    api_retries: 2\n", "    api_retries: 2\n    sdk_max_retries: 2\n"
    )
    assert "sdk_max_retries" in text
    with pytest.raises(CampaignError) as err:
        parse_campaign(text, tmp_path / "search_space.yaml")
    message = str(err.value)
    assert "agent.settings.sdk_max_retries" in message
    assert "api_retries is the one retry layer" in message


def test_a_stored_campaign_from_before_the_removal_still_loads(tmp_path: Path) -> None:
    """Sessions stored every default, sdk_max_retries included: resume and replay read them."""
    campaign = policy_campaign(tmp_path, api_retries=2)
    stored = campaign.model_dump(mode="json")
    stored["agent"]["settings"]["sdk_max_retries"] = 2
    stored["eval"]["judge"] = {"categories": ["facts"], "sdk_max_retries": 2}
    with pytest.raises(ValueError):
        Campaign.model_validate(stored)
    loaded = Campaign.from_stored(stored)
    assert loaded.agent.settings.api_retries == 2
    assert loaded.eval.judge == {"categories": ["facts"]}


# -- a minimal claude campaign ------------------------------------------------------------------


def policy_yaml(*, api_retries: int) -> str:
    from tests.test_claude_policy import CAMPAIGN_YAML

    marker = "  max_attempts: 3\n"
    assert marker in CAMPAIGN_YAML
    return CAMPAIGN_YAML.replace(marker, f"{marker}  settings:\n    api_retries: {api_retries}\n")


def policy_campaign(tmp_path: Path, *, api_retries: int) -> Campaign:
    from tests.test_claude_policy import make_campaign

    return make_campaign(tmp_path, policy_yaml(api_retries=api_retries))


def _context(campaign: Campaign) -> Any:
    from tests.test_claude_policy import context

    return context(campaign)


def _Fallback() -> Any:
    from tests.test_claude_policy import StubFallback

    return StubFallback()


def test_after_a_bad_key_the_judge_stops_calling() -> None:
    """A failure that recurs on every call (401, a spend limit) is paid once: the remaining
    answers are judge_error at once, saying why."""
    from probes.evaluation.judge import JudgeConfig, JudgeStatus, LLMJudge
    from probes.spec import EvalPrompt

    bad = error_reply(401, "authentication_error", "invalid x-api-key")
    transport = FakeTransport(handler=lambda _request: bad)
    judge = LLMJudge(JudgeConfig(), client=fake_client(transport), sleep=lambda _s: None)
    prompts = [EvalPrompt(id=f"p{i}", category="voice", prompt="Write.") for i in range(5)]
    results = [judge.score(p, "An answer.") for p in prompts]
    assert all(r.status is JudgeStatus.JUDGE_ERROR for r in results)
    assert len(transport.requests) == 1
    assert "judge unavailable: AuthenticationError (HTTP 401)" in (results[-1].error or "")
