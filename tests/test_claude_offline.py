"""The Claude policy without network (issue 10 item 10): after two calls in a row that cannot
connect, the policy goes offline — the fallback proposes, Claude is tried once (no retries)
every fifth turn, and the session log says so once — instead of spending every proposal's
retries (~80 s each) for the whole night."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2

from agent.policies.base import Action
from agent.policies.claude import OFFLINE_AFTER, RETRY_OFFLINE_EVERY
from agent.testing.fake_anthropic import FakeTransport, RecordedRequest
from tests.test_claude_policy import (
    CAMPAIGN_YAML,
    LR_UP,
    context,
    make_campaign,
    make_policy,
    propose,
    record,
)
from tests.test_llm_retries import within_backoff


class Network:
    """Requests fail to connect until `up` is set; then Claude proposes."""

    def __init__(self) -> None:
        self.up = False

    def __call__(self, request: RecordedRequest) -> Any:
        if not self.up:
            raise httpx2.ConnectError("[Errno 101] Network is unreachable")
        return propose("hyperparameters", LR_UP)


def test_repeated_connection_failures_go_offline_and_retry_claude_only_occasionally(
    tmp_path: Path,
) -> None:
    assert (OFFLINE_AFTER, RETRY_OFFLINE_EVERY) == (2, 5)  # the numbers below assume these
    campaign = make_campaign(tmp_path)  # api_retries 4 (default), the SDK's retries off
    network = Network()
    transport = FakeTransport(handler=network)
    policy, _fallback, sleeps = make_policy(campaign, transport)
    ctx = context(campaign)

    sources, notices = [], []
    for _turn in range(12):
        proposal = policy.ask(ctx)
        sources.append(proposal.fallback_from)
        notices += policy.notices()
    # Every turn fell back (nothing could connect) ...
    assert sources == ["claude"] * 12
    # ... but only turns 1 and 2 paid the retries: 5 requests each, backoff 2+4+8+16 s each.
    # Offline from turn 3, Claude is tried once, without retries, on turns 7 and 12.
    assert len(transport.requests) == 2 * 5 + 2
    assert within_backoff(sleeps, 2 * [2, 4, 8, 16])
    assert policy.offline
    assert len(notices) == 1 and notices[0].startswith("Claude unreachable: 2 calls in a row")
    assert "proposals come from stub, with one try of Claude every 5 proposals" in notices[0]
    # Readings are skipped while offline (no request, no wait).
    before = len(transport.requests)
    assert policy.read(record("p1", "hyperparameters", {"learning_rate": 0.002}), ctx) is None
    assert len(transport.requests) == before

    # The network comes back: the next scheduled try (turn 17) succeeds and Claude proposes
    # again from then on, which the log says once.
    network.up = True
    for _turn in range(13, 19):
        proposal = policy.ask(ctx)
        sources.append(proposal.fallback_from)
        notices += policy.notices()
    assert sources[12:] == ["claude"] * 4 + [None, None]
    assert notices[1:] == ["Claude reachable again: proposals come from Claude again"]
    assert not policy.offline and proposal.action is Action.PROBE


def test_the_offline_try_makes_one_request_even_with_sdk_retries(tmp_path: Path) -> None:
    """A client handed in with the SDK's retries on still makes one request per try: ours are
    the one retry layer (api_retries 0 here), online or offline."""
    text = CAMPAIGN_YAML.replace(
        "  max_attempts: 3\n", "  max_attempts: 3\n  settings: {api_retries: 0}\n"
    )
    assert text != CAMPAIGN_YAML
    campaign = make_campaign(tmp_path, text)
    transport = FakeTransport(handler=Network())
    policy, _, _ = make_policy(campaign, transport, max_retries=1)
    ctx = context(campaign)
    policy.ask(ctx)
    policy.ask(ctx)
    assert policy.offline and len(transport.requests) == 2  # no retries, the SDK's neither
    for _ in range(RETRY_OFFLINE_EVERY):
        policy.ask(ctx)
    assert len(transport.requests) == 2 + 1  # the one offline try
