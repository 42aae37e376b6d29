"""The claude policy on models that think by default: thinking counts toward max_tokens, the
rationale comes back in thinking blocks, and those blocks go back to the API unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.policies.base import Action
from agent.testing.fake_anthropic import FakeTransport, message, text_message
from probes.llm import THINKING_ROOM
from tests.test_claude_policy import (
    LR_UP,
    context,
    make_campaign,
    make_policy,
    propose,
    record,
)

THOUGHT = {
    "type": "thinking",
    "thinking": "The lr sweep stalled; warmup is untried, but lr at 2e-3 is the cheaper test.",
    "signature": "EqQBCkYIBxgCKkDsig0000",
}


def cut(*blocks: dict[str, Any]) -> dict[str, Any]:
    """A reply that ran out of max_tokens inside its thinking."""
    return message(list(blocks) or [dict(THOUGHT, thinking="")], stop_reason="max_tokens",
                   output_tokens=2048 + THINKING_ROOM)


def tool_call(args: dict[str, Any], *, thought: dict[str, Any] | None = None) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [thought] if thought else []
    blocks.append({"type": "tool_use", "id": "toolu_x1", "name": "propose_probe", "input": args})
    return message(blocks, stop_reason="tool_use")


ARGS = {"lane": "hyperparameters", "changes": LR_UP, "hypothesis": "lr up helps facts",
        "expected_effect": "+0.4 facts"}


def test_a_reply_cut_at_max_tokens_is_asked_again_with_twice_the_room(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path)
    transport = FakeTransport([cut(), propose("hyperparameters", LR_UP)])
    policy, _, _ = make_policy(campaign, transport)
    proposal = policy.ask(context(campaign))
    transport.check()
    assert proposal.fallback_from is None and proposal.changes == {"learning_rate": 0.002}
    first, second = (r.json for r in transport.requests)
    assert first["max_tokens"] == 2048 + THINKING_ROOM
    assert second["max_tokens"] == 2 * (2048 + THINKING_ROOM)  # twice the whole room
    # The cut reply is not part of the conversation (it held no answer) ...
    assert second["messages"] == first["messages"]
    # ... but its tokens were billed, so they are counted, and the session log says so.
    assert proposal.usage is not None
    assert proposal.usage.output_tokens == 2048 + THINKING_ROOM + 150
    assert policy.notices() == [
        f"Claude's reply was cut at max_tokens ({2048 + THINKING_ROOM} tokens written) before "
        "a complete answer; asked again once with twice the room"
    ]


def test_cut_twice_is_a_fallback_that_says_why_never_an_empty_proposal(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path)
    transport = FakeTransport([cut(), cut()])
    policy, _, _ = make_policy(campaign, transport)
    proposal = policy.ask(context(campaign))
    transport.check()
    assert len(transport.requests) == 2
    assert proposal.fallback_from == "claude" and proposal.action is Action.PROBE
    assert "cut at max_tokens twice" in (proposal.rationale or "")
    assert "agent.settings.max_tokens" in (proposal.rationale or "")


def test_the_rationale_is_read_from_summarized_thinking(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path)
    transport = FakeTransport([tool_call(ARGS, thought=THOUGHT)])
    policy, _, _ = make_policy(campaign, transport)
    proposal = policy.ask(context(campaign))
    transport.check()
    assert proposal.rationale == THOUGHT["thinking"]
    assert transport.requests[0].json["thinking"] == {"type": "adaptive", "display": "summarized"}


def test_thinking_blocks_go_back_unchanged_in_the_conversation(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path)
    bad = dict(ARGS, changes=[{"knob": "learning_rate", "value": 0.5}])  # out of range
    redacted = {"type": "redacted_thinking", "data": "opaque-bytes=="}
    first = message(
        [THOUGHT, redacted,
         {"type": "tool_use", "id": "toolu_bad", "name": "propose_probe", "input": bad}],
        stop_reason="tool_use",
    )
    transport = FakeTransport([first, propose("hyperparameters", LR_UP)])
    policy, _, _ = make_policy(campaign, transport)
    assert policy.ask(context(campaign)).changes == {"learning_rate": 0.002}
    transport.check()
    replayed = transport.requests[1].json["messages"][1]
    assert replayed["role"] == "assistant"
    assert replayed["content"][0] == THOUGHT  # every field, byte for byte
    assert replayed["content"][1] == redacted
    assert replayed["content"][2]["id"] == "toolu_bad"


def test_a_reading_cut_at_max_tokens_is_asked_again_at_low_effort(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path)
    transport = FakeTransport([cut(), text_message("lr up moved facts +0.4, inside noise.")])
    policy, _, _ = make_policy(campaign, transport)
    rec = record("p1", "hyperparameters", {"learning_rate": 0.002})
    reading = policy.read(rec, context(campaign, (rec,)))
    transport.check()
    assert reading == "lr up moved facts +0.4, inside noise."
    sizes = [r.json["max_tokens"] for r in transport.requests]
    assert sizes == [300 + THINKING_ROOM, 2 * (300 + THINKING_ROOM)]
    assert all(r.json["output_config"] == {"effort": "low"} for r in transport.requests)
    assert all("thinking" not in r.json for r in transport.requests)


def test_claude_sees_the_campaign_memory_as_data(tmp_path: Path) -> None:
    from dataclasses import replace

    campaign = make_campaign(tmp_path)
    earlier = (record("old-p1", "hyperparameters", {"learning_rate": 0.004}, "discard", -0.6),)
    transport = FakeTransport([propose("hyperparameters", LR_UP)])
    policy, _, _ = make_policy(campaign, transport)
    policy.ask(replace(context(campaign), earlier=earlier))
    user = transport.requests[0].json["messages"][0]["content"]
    state, data = user.split("<session_data>", 1)
    assert "Campaign memory: 1 probe(s) of earlier sessions" in state
    assert "Earlier sessions, same conditions" in data and "old-p1" in data
    assert "learning_rate=0.004" in data


def test_a_tool_call_cut_at_max_tokens_is_asked_again_not_trusted(tmp_path: Path) -> None:
    campaign = make_campaign(tmp_path)
    cut_call = message(
        [THOUGHT, {"type": "tool_use", "id": "toolu_cut", "name": "propose_probe",
                   "input": {"lane": "hyperparameters"}}],
        stop_reason="max_tokens",
    )
    transport = FakeTransport([cut_call, propose("hyperparameters", LR_UP)])
    policy, _, _ = make_policy(campaign, transport)
    proposal = policy.ask(context(campaign))
    transport.check()
    assert proposal.fallback_from is None and proposal.changes == {"learning_rate": 0.002}
    assert len(transport.requests) == 2


def test_the_cut_calls_cost_is_kept_when_the_second_call_fails(tmp_path: Path) -> None:
    from agent.testing.fake_anthropic import error_reply

    campaign = make_campaign(tmp_path)
    bad_key = error_reply(401, "authentication_error", "invalid x-api-key")
    transport = FakeTransport([cut(), bad_key, propose("hyperparameters", LR_UP)])
    policy, _, _ = make_policy(campaign, transport)
    first = policy.ask(context(campaign))
    assert first.fallback_from == "claude"
    # The cut reply was billed: its tokens are in this turn's usage.
    assert first.usage is not None and first.usage.output_tokens == 2048 + THINKING_ROOM
