"""evaluate_adapter with an LLM judge (`eval.judge`): the tiny demo model generates, the real
anthropic client judges through a scripted fake transport. Nothing reaches the network."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agent.testing.fake_anthropic import (
    TEST_API_KEY,
    FakeTransport,
    RecordedRequest,
    batch_reply,
    batch_results_reply,
    error_reply,
    fake_client,
    text_message,
)
from probes.evaluation import run as run_module
from probes.evaluation.cache import cache_key
from probes.evaluation.config import EvalConfig, GenerationConfig, ScorerConfig
from probes.evaluation.judge import JudgeConfig
from probes.evaluation.run import evaluate_adapter, judge_signatures
from probes.llm import MissingAPIKeyError
from probes.spec import EvalPrompt, ProbeKind, ProbeSpec, parse_scores, scored
from probes.trainers.trl_worker import evaluate_probe
from tests.conftest_demo import *  # noqa: F403  (the demo fixtures)

PROMPTS = [
    EvalPrompt(id="voice-01", category="voice", prompt="write a line about the sea ."),
    EvalPrompt(id="voice-02", category="voice", prompt="write a line about the hills ."),
    EvalPrompt(id="voice-03", category="voice", prompt="write a line about the town ."),
    EvalPrompt(id="facts-01", category="facts", prompt="where does vegroum live ?",
               reference="vegroum lives in saltmere ."),
]
GARBAGE_ID = "voice-02"
JUDGE: dict[str, Any] = {
    "model": "claude-sonnet-5-5",
    "categories": ["voice"],
    "rubric": [{"name": "style", "weight": 0.6}, {"name": "accuracy", "weight": 0.4}],
    "max_attempts": 2,
}
REPEATS = 2
# Valid replies: style 8, accuracy 5 -> 0.6 * 8 + 0.4 * 5 = 6.8; the judge's own overall 9.
WEIGHTED = 6.8
GOOD = json.dumps({"components": {"style": 8, "accuracy": 5}, "overall": 9,
                   "rationale": "Plain but apt."})


def eval_config(**judge: Any) -> EvalConfig:
    return EvalConfig(
        prompts="probe-prompts.jsonl",
        generation=GenerationConfig(max_new_tokens=6),
        judge={**JUDGE, **judge},
    )


def judge_model(request: RecordedRequest) -> dict[str, Any]:
    """The fake judge: valid JSON, except unparsable prose for GARBAGE_ID's answers."""
    user = request.json["messages"][0]["content"]
    if f'id="{GARBAGE_ID}"' in user:
        return text_message("I would rate this answer quite highly overall, honestly.")
    return text_message(GOOD)


@pytest.fixture
def transport(monkeypatch: pytest.MonkeyPatch) -> FakeTransport:
    """The judge's client talks to this transport; the key is set as a real user's would be."""
    fake = FakeTransport(handler=judge_model)
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    monkeypatch.setattr(run_module, "make_judge_client", lambda config: fake_client(fake))
    return fake


def evaluate(model: Path, config: EvalConfig, **kw: Any) -> tuple[list, dict]:
    args: dict[str, Any] = {
        "base_model": model,
        "adapter": None,
        "prompts": PROMPTS,
        "eval_config": config,
        "repeats": REPEATS,
        "seed": 0,
        "critical_below": 7.0,
    }
    args.update(kw)
    return evaluate_adapter(**args)


def test_judged_category_scores_errors_cost_and_cache(
    tiny_model: Path, transport: FakeTransport, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    scores, metrics = evaluate(tiny_model, eval_config(), cache_dir=cache,
                               outputs_path=tmp_path / "outputs.jsonl")

    assert [(s.prompt_id, s.repeat) for s in scores] == [
        (p.id, r) for p in PROMPTS for r in range(REPEATS)]
    rubric_hash = JudgeConfig(**JUDGE).rubric_hash
    for s in scores:
        if s.category == "facts":  # not listed: keeps its deterministic scorer
            assert s.meta is None and s.error is None and "exact_match" in (s.components or {})
            continue
        assert s.meta is not None
        assert s.meta["judge_model"] == "claude-sonnet-5-5"
        assert s.meta["rubric_hash"] == rubric_hash
        if s.prompt_id == GARBAGE_ID:  # unparsable after its retries: no score, never a 0
            assert math.isnan(s.score) and not s.ok and not s.critical
            assert s.error is not None and s.error.startswith("judge_error: unusable judge reply")
            assert s.to_dict()["score"] is None
        else:
            assert s.ok and s.score == pytest.approx(WEIGHTED)  # deterministic weighted average
            assert s.components == {"style": 8.0, "accuracy": 5.0}
            assert s.meta["judge_overall"] == "9"  # the judge's own, for reference only
            assert s.critical  # 6.8 < critical_below 7.0, as for any scorer

    # 2 answers x 2 prompts parse at once; the garbage prompt's 2 answers take 2 attempts each.
    assert len(transport.requests) == 2 * 2 + 2 * 2
    assert metrics["judge_samples"] == 3 * REPEATS
    assert metrics["judge_errors"] == REPEATS
    assert metrics["judge_calls"] == 8
    assert metrics["judge_input_tokens"] == 8 * 1200
    assert metrics["judge_output_tokens"] == 8 * 150
    assert metrics["judge_cost_usd"] == pytest.approx(8 * (1200 * 2 + 150 * 10) / 1e6)
    assert metrics["eval_score_voice"] == pytest.approx(WEIGHTED)  # errors left out, not 0
    assert all(isinstance(v, float) for v in metrics.values())
    rows = [json.loads(line) for line in (tmp_path / "outputs.jsonl").read_text().splitlines()]
    judged_rows = [r for r in rows if "judge" in r]
    assert len(judged_rows) == 3 * REPEATS
    assert {r["judge"]["rationale"] for r in judged_rows if r["judge"]["status"] == "ok"} == {
        "Plain but apt."}

    # The same evaluation again: read back, judge not called, errors and meta restored.
    again, hit_metrics = evaluate(tiny_model, eval_config(), cache_dir=cache)
    assert hit_metrics["eval_cache_hit"] == 1.0
    assert len(transport.requests) == 8
    assert [s.to_dict() for s in again] == [s.to_dict() for s in scores]
    assert [s.critical for s in again] == [s.critical for s in scores]
    assert hit_metrics["judge_errors"] == REPEATS and hit_metrics["judge_cost_usd"] == 0.0

    # Transport settings do not change a judged score: still a hit.
    _, same = evaluate(tiny_model, eval_config(api_retries=1, batch=True), cache_dir=cache)
    assert same["eval_cache_hit"] == 1.0

    # A changed rubric weight changes what a score means: a miss, judged again.
    changed = [{"name": "style", "weight": 0.5}, {"name": "accuracy", "weight": 0.5}]
    rescored, miss = evaluate(tiny_model, eval_config(rubric=changed), cache_dir=cache)
    assert miss["eval_cache_hit"] == 0.0
    assert len(transport.requests) == 16
    voice = [s for s in rescored if s.prompt_id == "voice-01"]
    assert voice[0].score == pytest.approx(6.5)
    assert voice[0].meta is not None and voice[0].meta["rubric_hash"] != rubric_hash


def test_baseline_and_probe_are_judged_with_the_same_settings(
    tiny_model: Path, tiny_adapter: Path, transport: FakeTransport
) -> None:
    config = eval_config()
    baseline, _ = evaluate(tiny_model, config, adapter=None)
    probe, _ = evaluate(tiny_model, config, adapter=tiny_adapter)
    signature = {("claude-sonnet-5-5", JudgeConfig(**JUDGE).rubric_hash)}
    assert judge_signatures(baseline) == judge_signatures(probe) == signature
    judged = [s for s in baseline + probe if s.category == "voice"]
    assert len(judged) == 2 * 3 * REPEATS and all(s.meta for s in judged)


def test_batch_mode_sends_all_of_a_probes_answers_in_one_batch(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 3 * REPEATS
    transport = FakeTransport([
        batch_reply("msgbatch_1", ended=False, n=n, path="/v1/messages/batches"),
        batch_reply("msgbatch_1", ended=True, n=n, path="/v1/messages/batches/msgbatch_1"),
        batch_reply("msgbatch_1", ended=True, n=n),
        batch_results_reply({f"judge-{i}": text_message(GOOD) for i in range(n)}),
    ])
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    monkeypatch.setattr(run_module, "make_judge_client", lambda config: fake_client(transport))

    scores, metrics = evaluate(tiny_model, eval_config(batch=True, batch_poll_seconds=0.01))

    transport.check()
    batch = transport.requests[0].json["requests"]
    assert len(batch) == n  # every judged answer of the probe, all repeats
    assert not any(r.path == "/v1/messages" for r in transport.requests)
    assert all(s.ok for s in scores)
    assert metrics["judge_batch"] == 1.0 and metrics["judge_errors"] == 0
    assert metrics["judge_cost_usd"] == pytest.approx(n * (1200 * 2 + 150 * 10) / 1e6 * 0.5)


def test_the_worker_writes_judged_scores_without_the_key(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The trl worker's evaluation: scores.jsonl parses, and the key is in no file, log or
    error, even when the API echoes it back in an error message."""

    def model(request: RecordedRequest) -> Any:
        user = request.json["messages"][0]["content"]
        if 'id="voice-03"' in user:  # a non-retryable API error that quotes the key
            return error_reply(401, "authentication_error", f"invalid x-api-key {TEST_API_KEY}")
        return judge_model(request)

    transport = FakeTransport(handler=model)
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    monkeypatch.setattr(run_module, "make_judge_client", lambda config: fake_client(transport))
    caplog.set_level(logging.DEBUG)
    prompts_file = tmp_path / "probe-prompts.jsonl"
    prompts_file.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in PROMPTS))
    out = tmp_path / "probe"
    out.mkdir()
    spec = ProbeSpec(
        probe_id="probe-1", session_id="s-1", kind=ProbeKind.PROBE, steps=1, seed=0,
        lane=None, changes={}, params={}, eval_prompts=prompts_file, out_dir=out,
        eval_repeats=REPEATS,
        trainer={"model": str(tiny_model), "eval": eval_config().model_dump(mode="json"),
                 "eval_cache_dir": str(tmp_path / "cache"), "device": "cpu",
                 "critical_below": 7.0},
    )

    metrics = evaluate_probe(spec, None)
    (out / "metrics.json").write_text(json.dumps(metrics))

    parsed = parse_scores(out / "scores.jsonl", PROMPTS)
    assert len(parsed) == len(PROMPTS) * REPEATS
    errors = {s.prompt_id for s in parsed if not s.ok}
    assert errors == {GARBAGE_ID, "voice-03"}
    assert all(math.isnan(s.score) and s.error and s.error.startswith("judge_error: ")
               for s in parsed if not s.ok)
    assert {s.prompt_id for s in scored(parsed)} == {"voice-01", "facts-01"}
    assert all(s.meta and s.meta["rubric_hash"] for s in parsed if s.category == "voice")
    api_error = next(s.error for s in parsed if s.prompt_id == "voice-03")
    assert api_error is not None and "[redacted]" in api_error and "401" in api_error
    assert all(isinstance(v, (int, float)) for v in json.loads(
        (out / "metrics.json").read_text()).values())
    assert metrics["judge_errors"] == 2 * REPEATS
    # An API failure says nothing about the answers: that evaluation is not cached.
    assert not list((tmp_path / "cache").glob("*.json"))

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {"scores.jsonl", "outputs.jsonl", "metrics.json"} <= {p.name for p in written}
    for path in written:
        assert TEST_API_KEY not in path.read_text(encoding="utf-8", errors="replace"), path
    assert TEST_API_KEY not in caplog.text
    # The key was sent to the API, where it belongs.
    assert TEST_API_KEY in transport.requests[0].headers["authorization"]


def test_missing_key_fails_before_generation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="ANTHROPIC_API_KEY is not set"):
        # No model there: the judge's key is checked first.
        evaluate(tmp_path / "no-model", eval_config())


def test_judge_config_is_validated_with_the_scorers() -> None:
    with pytest.raises(ValidationError, match=r"rubric\.0\.weight"):
        eval_config(rubric=[{"name": "style", "weight": -1}])
    with pytest.raises(ValidationError, match=r"scored both by eval\.judge and by scorer"):
        EvalConfig(prompts="p.jsonl", judge={"categories": ["voice"]},
                   scorers=[ScorerConfig(name="token_f1", categories=["voice"])])
    with pytest.raises(ValidationError, match="has no 'categories'"):
        EvalConfig(prompts="p.jsonl", judge={}, scorers=[ScorerConfig(name="token_f1")])
    # Without categories the judge scores every category no scorer names.
    open_judge = EvalConfig(prompts="p.jsonl", judge={},
                            scorers=[ScorerConfig(name="exact_match", categories=["facts"])])
    assert open_judge.judged("voice") and not open_judge.judged("facts")
    assert not EvalConfig(prompts="p.jsonl").judged("voice")


def test_cache_key_covers_the_judge(tiny_model: Path) -> None:
    def key(config: EvalConfig) -> str:
        return cache_key(base_model=tiny_model, adapter=None, prompts=PROMPTS,
                         eval_config=config, repeats=1, seed=0, device="cpu")

    plain = EvalConfig(prompts="p.jsonl")
    assert key(plain) == key(EvalConfig(prompts="p.jsonl"))
    assert key(plain) != key(eval_config())
    assert key(eval_config()) != key(eval_config(model="claude-opus-5"))
    assert key(eval_config()) != key(eval_config(instructions="The persona is a poet."))
    assert key(eval_config()) == key(eval_config(timeout=30, batch=True, api_retries=0))
