"""Secret redaction, one layer at a time.

`probes.redaction.redact` has two layers: the known secret values (the client's key and
token, ANTHROPIC_API_KEY / ANTHROPIC_AUTH_TOKEN, gathered by `client_secrets`) and a pattern
for anything shaped like an Anthropic key (`sk-ant-...`). The fake client's TEST_API_KEY
matches both, so a test using it cannot tell a broken layer from a working one. Here each
layer is the only one that can catch its secret:

- a credential without the `sk-ant-` shape: only the values layer hides it;
- an `sk-ant-` key that is in no values list (a key pasted into a message, a second key):
  only the pattern hides it.

Each is checked through the functions the code uses for error messages: `redact`,
`describe_api_error`, `client_secrets`, the judge's judge_error, `judged_score`, the eval run's
"LLM judge failed" error and the claude policy's disabled reason.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from agent.policies.claude import ClaudePolicy
from agent.testing.fake_anthropic import FakeTransport, error_reply, fake_client
from probes.evaluation import run as run_module
from probes.evaluation.judge import JudgeConfig, JudgeResult, JudgeStatus, LLMJudge
from probes.evaluation.run import JudgeRunError, judged_score
from probes.llm import describe_api_error
from probes.redaction import client_secrets, redact
from probes.spec import EvalPrompt
from tests.test_claude_policy import StubFallback, context, make_campaign

PLAIN_SECRET = "hunter2-plain-credential-9f8e7d"
"""A credential the pattern cannot recognise (no sk-ant- prefix): only the values layer."""

PLAIN_TOKEN = "Bearer-token-QWERTY-123456"
"""Another one, given only through ANTHROPIC_AUTH_TOKEN."""

UNLISTED_KEY = "sk-ant-api03-Zx9_Q-7mN2pLw8"
"""An Anthropic-shaped key that no values list holds: only the pattern."""

UNLISTED_TAIL = UNLISTED_KEY.removeprefix("sk-ant-")

PROMPT = EvalPrompt(id="v-01", category="voice", prompt="Say aye.")


@pytest.fixture(autouse=True)
def _no_keys_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The values layer must see only what a test gives it.
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)


def assert_hidden(text: str | None, secret: str) -> None:
    assert text is not None
    assert secret not in text
    # No long fragment of it either (a pattern that stops at '_' or '-' leaks the rest).
    for i in range(len(secret) - 5):
        assert secret[i : i + 6] not in text, (secret[i : i + 6], text)


class _Boom(Exception):
    pass


# ---- the values layer alone ----------------------------------------------------------------


def test_values_layer_redact_hides_a_plain_secret() -> None:
    text = f"request failed: x-api-key {PLAIN_SECRET} was rejected ({PLAIN_SECRET})"
    out = redact(text, [PLAIN_SECRET])
    assert_hidden(out, PLAIN_SECRET)
    assert out.count("[redacted]") == 2
    assert out.startswith("request failed: x-api-key ")
    # The pattern alone does not know it: without the value, it stays (this is why the
    # values layer exists, and what the test above relies on).
    assert PLAIN_SECRET in redact(text, [])


def test_values_layer_describe_api_error_hides_a_plain_secret() -> None:
    exc = _Boom(f"invalid x-api-key: {PLAIN_SECRET}")
    out = describe_api_error(exc, [PLAIN_SECRET])
    assert out.startswith("_Boom: invalid x-api-key: ")
    assert_hidden(out, PLAIN_SECRET)
    assert "[redacted]" in out


def test_values_layer_client_secrets_gathers_client_and_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", PLAIN_TOKEN)
    client = fake_client(FakeTransport(), api_key=PLAIN_SECRET)
    secrets = client_secrets(client)
    assert PLAIN_SECRET in secrets and PLAIN_TOKEN in secrets
    exc = _Boom(f"key {PLAIN_SECRET} token {PLAIN_TOKEN}")
    out = describe_api_error(exc, secrets)
    assert_hidden(out, PLAIN_SECRET)
    assert_hidden(out, PLAIN_TOKEN)
    # Without a client the environment's values are still gathered.
    assert_hidden(describe_api_error(exc, client_secrets(None)), PLAIN_TOKEN)


def test_values_layer_reads_the_clients_own_token_and_masks_exactly() -> None:
    from types import SimpleNamespace

    from probes.redaction import MIN_SECRET_LENGTH

    # A client holding only a token (no key, nothing in the environment).
    client = SimpleNamespace(api_key=None, auth_token=PLAIN_TOKEN)
    assert client_secrets(client) == [PLAIN_TOKEN]
    assert redact(f"token={PLAIN_TOKEN};", client_secrets(client)) == "token=[redacted];"
    # The length floor: a value of exactly MIN_SECRET_LENGTH is a secret, one shorter is not.
    edge = "x" * MIN_SECRET_LENGTH
    assert client_secrets(SimpleNamespace(api_key=edge, auth_token=edge[1:])) == [edge]


def test_values_layer_judge_error_hides_the_clients_plain_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    transport = FakeTransport(
        [error_reply(401, "authentication_error", f"invalid x-api-key {PLAIN_SECRET}")]
    )
    judge = LLMJudge(JudgeConfig(), client=fake_client(transport, api_key=PLAIN_SECRET))
    failed = judge.score(PROMPT, "aye")
    transport.check()
    assert failed.status is JudgeStatus.JUDGE_ERROR
    assert "401" in (failed.error or "") and "[redacted]" in (failed.error or "")
    assert_hidden(failed.error, PLAIN_SECRET)
    assert_hidden(json.dumps(failed.to_dict()), PLAIN_SECRET)
    assert_hidden(caplog.text, PLAIN_SECRET)


def test_values_layer_judged_score_error_hides_a_plain_secret() -> None:
    result = JudgeResult(
        prompt_id="v-01",
        category="voice",
        status=JudgeStatus.JUDGE_ERROR,
        score=None,
        error=f"AuthenticationError (HTTP 401): invalid x-api-key {PLAIN_SECRET}",
    )
    score = judged_score(
        result, 0, JudgeConfig(), critical_below=None, higher_is_better=True,
        secrets=[PLAIN_SECRET],
    )  # fmt: skip
    assert score.error is not None and score.error.startswith("judge_error: ")
    assert_hidden(score.error, PLAIN_SECRET)


def test_values_layer_eval_run_judge_failure_hides_the_clients_plain_key() -> None:
    class FailingJudge:
        _client = fake_client(FakeTransport(), api_key=PLAIN_SECRET)

        def score_many(self, items: Any) -> Any:
            raise _Boom(f"batch refused for key {PLAIN_SECRET}")

    with pytest.raises(JudgeRunError) as info:
        run_module._judge_answers(FailingJudge(), [(PROMPT, 0, "aye")])  # type: ignore[arg-type]
    assert str(info.value).startswith("LLM judge failed: _Boom")
    assert_hidden(str(info.value), PLAIN_SECRET)


def test_values_layer_claude_policy_disabled_reason_hides_its_plain_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    campaign = make_campaign(tmp_path)
    transport = FakeTransport(
        [error_reply(401, "authentication_error", f"invalid x-api-key: {PLAIN_SECRET}")]
    )
    policy = ClaudePolicy(
        campaign, fallback=StubFallback(), client=fake_client(transport, api_key=PLAIN_SECRET),
        sleep=lambda s: None,
    )  # fmt: skip
    proposal = policy.ask(context(campaign))
    transport.check()
    assert proposal.fallback_from == "claude"
    assert policy.disabled_reason is not None and "[redacted]" in policy.disabled_reason
    assert_hidden(policy.disabled_reason, PLAIN_SECRET)
    assert_hidden(repr(proposal), PLAIN_SECRET)
    assert_hidden(caplog.text, PLAIN_SECRET)


# ---- the pattern layer alone ---------------------------------------------------------------


def test_pattern_layer_redact_hides_an_unlisted_key() -> None:
    text = f"config had api_key={UNLISTED_KEY}; retrying"
    for secrets in ([], [PLAIN_SECRET]):  # no list, or a list that does not hold it
        out = redact(text, secrets)
        assert UNLISTED_KEY not in out
        assert_hidden(out, UNLISTED_TAIL)
        assert out == "config had api_key=sk-ant-[redacted]; retrying"


def test_pattern_layer_describe_api_error_hides_an_unlisted_key() -> None:
    out = describe_api_error(_Boom(f"invalid x-api-key: {UNLISTED_KEY}"))
    assert out == "_Boom: invalid x-api-key: sk-ant-[redacted]"


def test_pattern_layer_judge_error_hides_a_key_the_client_does_not_hold(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # The client's own key is plain, so its values list cannot hold the echoed sk-ant- key.
    transport = FakeTransport(
        [error_reply(401, "authentication_error", f"key {UNLISTED_KEY} was revoked")]
    )
    client = fake_client(transport, api_key=PLAIN_SECRET)
    assert UNLISTED_KEY not in client_secrets(client)
    failed = LLMJudge(JudgeConfig(), client=client).score(PROMPT, "aye")
    transport.check()
    assert failed.status is JudgeStatus.JUDGE_ERROR
    assert "sk-ant-[redacted]" in (failed.error or "")
    assert_hidden(failed.error, UNLISTED_TAIL)
    assert_hidden(json.dumps(failed.to_dict()), UNLISTED_TAIL)
    assert_hidden(caplog.text, UNLISTED_TAIL)


def test_pattern_layer_judged_score_error_hides_an_unlisted_key() -> None:
    result = JudgeResult(
        prompt_id="v-01",
        category="voice",
        status=JudgeStatus.JUDGE_ERROR,
        score=None,
        error=f"the judge quoted {UNLISTED_KEY}",
    )
    score = judged_score(result, 0, JudgeConfig(), critical_below=None, higher_is_better=True)
    assert score.error == "judge_error: the judge quoted sk-ant-[redacted]"


def test_pattern_layer_eval_run_judge_failure_hides_an_unlisted_key() -> None:
    class FailingJudge:
        _client = fake_client(FakeTransport(), api_key=PLAIN_SECRET)

        def score_many(self, items: Any) -> Any:
            raise _Boom(f"batch refused for key {UNLISTED_KEY}")

    with pytest.raises(JudgeRunError) as info:
        run_module._judge_answers(FailingJudge(), [(PROMPT, 0, "aye")])  # type: ignore[arg-type]
    assert str(info.value) == "LLM judge failed: _Boom: batch refused for key sk-ant-[redacted]"


def test_pattern_layer_claude_policy_disabled_reason_hides_an_unlisted_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    campaign = make_campaign(tmp_path)
    transport = FakeTransport(
        [error_reply(401, "authentication_error", f"invalid x-api-key: {UNLISTED_KEY}")]
    )
    policy = ClaudePolicy(
        campaign, fallback=StubFallback(), client=fake_client(transport, api_key=PLAIN_SECRET),
        sleep=lambda s: None,
    )  # fmt: skip
    proposal = policy.ask(context(campaign))
    transport.check()
    assert policy.disabled_reason is not None
    assert "sk-ant-[redacted]" in policy.disabled_reason
    assert_hidden(policy.disabled_reason, UNLISTED_TAIL)
    assert_hidden(repr(proposal), UNLISTED_TAIL)
    assert_hidden(caplog.text, UNLISTED_TAIL)


# ---- trainers: the loop's secrets stay out of their environment and of what they print ------

ENV_DUMPER = """\
import json, os, sys
print("environment:", json.dumps(dict(os.environ)))
print("again", os.environ.get("ANTHROPIC_API_KEY", "no key"))
sys.exit(3)
"""


@pytest.mark.parametrize("pass_env", [[], ["ANTHROPIC_API_KEY"]])
def test_a_trainer_that_prints_its_environment_leaks_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pass_env: list[str]
) -> None:
    import sys

    from probes.spec import ProbeKind, ProbeSpec
    from probes.trainers.command import CommandTrainer
    from probes.trainers.config import CommandTrainerConfig

    monkeypatch.setenv("ANTHROPIC_API_KEY", PLAIN_SECRET)  # no sk-ant- shape: values layer only
    script = tmp_path / "dump_env.py"
    script.write_text(ENV_DUMPER)
    (tmp_path / "prompts.jsonl").write_text("")
    config = CommandTrainerConfig(
        argv=[sys.executable, str(script), "{config}"], pass_env=pass_env  # type: ignore[arg-type]
    )
    out = tmp_path / "probe"
    out.mkdir()
    spec = ProbeSpec(
        probe_id="probe-1", session_id="s-1", kind=ProbeKind.PROBE, steps=1, seed=0,
        lane=None, changes={}, params={}, eval_prompts=tmp_path / "prompts.jsonl", out_dir=out,
    )
    result = CommandTrainer(config, tmp_path).run(spec)
    assert not result.ok and "exited with code 3" in (result.error or "")
    log = (out / "train.log").read_text() if (out / "train.log").exists() else ""
    log = log or "".join(p.read_text() for p in out.glob("*.log"))
    # What the trainer saw: the key only when the campaign passed it (and what it printed of
    # it is masked in its log file too).
    assert ("again no key" in log) == (not pass_env)
    assert ("again [redacted]" in log) == bool(pass_env)
    assert PLAIN_SECRET not in log
    # What the loop keeps and shows: never the key.
    assert "environment:" in result.log_tail
    assert PLAIN_SECRET not in result.log_tail and PLAIN_SECRET not in (result.error or "")
