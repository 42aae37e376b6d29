"""The claude policy end to end over real HTTP: `autoresearch start --budget 6` in its own
process, with the real anthropic client pointed (ANTHROPIC_BASE_URL) at a loopback server
that speaks the Messages API and refuses what the real API refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent.store.store import Store
from agent.testing.fake_anthropic import (
    TEST_API_KEY,
    FakeTransport,
    RecordedRequest,
    serve,
    text_message,
    tool_use_message,
)
from tests.conftest import CAMPAIGN, FAKE_TRAINER, make_workspace

PLAN = [
    ("hyperparameters", "learning_rate", 0.002),
    ("data_mixture", "mixture", "stratified"),
    ("curriculum", "curriculum", "reverse"),
    ("hyperparameters", "lora_r", 32),
    ("hyperparameters", "learning_rate", 0.0005),
]


class Model:
    """Plays Claude: proposals in PLAN order (then conclude), a line per reading, a narrative."""

    def __init__(self) -> None:
        self.plan = list(PLAN)

    def __call__(self, request: RecordedRequest) -> Any:
        body = request.json
        if request.path != "/v1/messages":
            raise AssertionError(f"unexpected request {request.method} {request.path}")
        if body["tool_choice"]["type"] == "none":
            prompt = body["messages"][-1]["content"]
            if "narrative" in prompt:
                return text_message("### Findings\nThe learning rate is the lever.")
            return text_message("Within the noise; move on.")
        if not self.plan:
            return tool_use_message("conclude", {"summary": "the plan is done"})
        lane, knob, value = self.plan.pop(0)
        return tool_use_message(
            "propose_probe",
            {
                "lane": lane,
                "changes": [{"knob": knob, "value": value}],
                "hypothesis": f"{knob}={value} should move facts",
                "expected_effect": "+0.3 facts, guards flat",
            },
            text=f"{knob} is untried at {value}.",
        )


def test_a_whole_session_against_a_loopback_messages_api(tmp_path: Path) -> None:
    text = CAMPAIGN.format(python=sys.executable, trainer=FAKE_TRAINER, timeout="60s")
    text = text.replace("policy: sweep", "policy: claude\n  model: claude-sonnet-5-5")
    assert "policy: claude" in text
    workspace = make_workspace(tmp_path / "ws", campaign=text)
    transport = FakeTransport(handler=Model())
    with serve(transport) as base_url:
        env = {
            **os.environ,
            "ANTHROPIC_API_KEY": TEST_API_KEY,
            "ANTHROPIC_BASE_URL": base_url,
        }
        result = subprocess.run(
            [sys.executable, "-c", "from agent.cli import main; main()",
             "start", "--budget", "6", "-w", str(workspace)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    # Every request reached the server over HTTP, with the key, and none was refused.
    assert transport.requests and not transport.refused, transport.refused
    assert all(
        TEST_API_KEY in r.headers.get("x-api-key", "") + r.headers.get("authorization", "")
        for r in transport.requests
    )
    transport.check()

    store = Store(workspace)
    session = store.latest_session()
    assert session is not None and session.status == "finished"
    probes = [p for p in store.probes(session.id) if p.kind == "probe"]
    planned = [{knob: value} for _, knob, value in PLAN]
    assert probes and [p.changes for p in probes] == planned[: len(probes)]
    decisions = [d for d in store.decisions(session.id) if d.accepted]
    assert decisions and {d.policy for d in decisions} == {"claude"}  # no fallback
    assert all(d.cost_usd > 0 and d.input_tokens > 0 for d in decisions)  # cost recorded
    assert "The learning rate is the lever." in (workspace / "SESSION_REPORT.md").read_text()
    # The key went to the API and nowhere the product writes.
    for path in workspace.rglob("*"):
        if path.is_file():
            assert TEST_API_KEY.encode() not in path.read_bytes(), path
    assert TEST_API_KEY not in result.stdout + result.stderr
    sent = [json.dumps(r.json) for r in transport.requests]
    assert all('"temperature"' not in s for s in sent)
