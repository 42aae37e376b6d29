"""The evaluation entry point built-in trainers call after training: :func:`evaluate_adapter`.

One call generates answers for every prompt (``repeats`` per prompt), scores each with the
scorers configured for its category, and returns one :class:`~probes.spec.Score` per
(prompt, repeat) on the common scale (0-10 by default) plus evaluation metrics.

With ``eval.judge`` configured, the categories the judge scores (``judge.categories``, see
:meth:`EvalConfig.judged`) are scored by :class:`~probes.evaluation.judge.LLMJudge` on every
generated answer (all repeats, one Message Batch per probe in batch mode); the other
categories keep their deterministic scorers. A judged score is the deterministic weighted
average of the rubric components; its ``meta`` names the judge model and rubric hash; an
answer the judge could not score is a Score with ``error="judge_error: …"`` and no score —
never a 0.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probes.evaluation import base, metrics
from probes.evaluation.cache import EvalCache, cache_key
from probes.evaluation.config import EvalConfig, ScorerConfig
from probes.evaluation.judge import JudgeConfig, JudgeResult, LLMJudge, total_usage
from probes.llm import default_client
from probes.redaction import client_secrets, redact
from probes.spec import EvalPrompt, Score

if TYPE_CHECKING:
    import anthropic

log = logging.getLogger(__name__)

JUDGE_METRICS = (
    "judge_cost_usd",
    "judge_input_tokens",
    "judge_output_tokens",
    "judge_cache_read_tokens",
    "judge_cache_write_tokens",
    "judge_calls",
)
"""What the judge spent; zero on a cache hit (nothing was spent)."""


class JudgeRunError(RuntimeError):
    """The judge stage failed as a whole (not one answer: those are judge_error scores)."""


def is_critical(score: float, critical_below: float | None, higher_is_better: bool) -> bool:
    """A per-prompt failure: below the threshold (above it when lower is better)."""
    if critical_below is None:
        return False
    return score < critical_below if higher_is_better else score > critical_below


def score_output(
    prompt: EvalPrompt,
    output: str,
    scorers: Sequence[ScorerConfig],
    nll: float | None = None,
) -> tuple[float, dict[str, float]]:
    """Score one output: each scorer's [0, 1] value times its scale, averaged.

    Returns the score and its components (scorer name -> scaled value).
    """
    components: dict[str, float] = {}
    for sc in scorers:
        if sc.name == "nll":
            if nll is None:
                raise base.ScorerError(f"prompt {prompt.id!r}: nll scorer needs the model's nll")
            unit = metrics.nll_to_unit(nll)
        else:
            unit = base.get_scorer(sc.name)(prompt, output)
        components[sc.name] = round(sc.scale * min(1.0, max(0.0, unit)), 6)
    return sum(components.values()) / len(components), components


def make_judge_client(config: JudgeConfig) -> anthropic.Anthropic:
    """The judge's client, keyed from ANTHROPIC_API_KEY (read only there, in the process that
    evaluates: the trl worker inherits the environment). Tests replace this function (or
    :func:`make_judge`) to inject a fake transport."""
    return default_client(timeout=config.timeout)


def make_judge(config: JudgeConfig) -> LLMJudge:
    """The judge of one evaluation."""
    return LLMJudge(config, client=make_judge_client(config))


def judged_score(
    result: JudgeResult,
    repeat: int,
    config: JudgeConfig,
    *,
    critical_below: float | None,
    higher_is_better: bool,
    secrets: Sequence[str] = (),
) -> Score:
    """The Score of one judgement: the weighted overall (range-checked) with the judge model
    and rubric hash in ``meta``, or a ``judge_error`` with no score (never a 0)."""
    meta = {"scorer": "llm_judge", "judge_model": result.model, "rubric_hash": result.rubric_hash}
    value = result.score
    error = result.error or "the judge returned no score"
    if result.ok and value is not None:
        if math.isfinite(value) and config.score_min <= value <= config.score_max:
            if result.judge_overall is not None:
                meta["judge_overall"] = f"{result.judge_overall:g}"  # for reference only
            if result.repaired:
                meta["judge_repaired"] = "true"
            return Score(
                prompt_id=result.prompt_id,
                category=result.category,
                score=value,
                repeat=repeat,
                critical=is_critical(value, critical_below, higher_is_better),
                components=dict(result.components),
                meta=meta,
            )
        error = f"score {value!r} outside [{config.score_min:g}, {config.score_max:g}]"
    return Score(
        prompt_id=result.prompt_id,
        category=result.category,
        score=math.nan,
        repeat=repeat,
        meta=meta,
        error="judge_error: " + redact(" ".join(error.split()), secrets),
    )


def judge_signatures(scores: Sequence[Score]) -> set[tuple[str, str]]:
    """The (judge model, rubric hash) pairs of judged scores: a baseline and a probe judged
    with the same settings have the same single pair."""
    return {
        (s.meta["judge_model"], s.meta["rubric_hash"])
        for s in scores
        if s.meta and "rubric_hash" in s.meta and "judge_model" in s.meta
    }


def _judge_answers(
    judge: LLMJudge,
    items: list[tuple[EvalPrompt, int, str]],
) -> list[JudgeResult]:
    """Judge every (prompt, repeat, answer); one batch for all of them in batch mode."""
    secrets = client_secrets(judge._client)
    try:
        return judge.score_many([(p, a) for p, _, a in items])
    except Exception as exc:  # the key must not leave in a message
        raise JudgeRunError(
            "LLM judge failed: " + redact(f"{type(exc).__name__}: {exc}", secrets)
        ) from None


def evaluate_adapter(
    *,
    base_model: Path,
    adapter: Path | None,
    prompts: list[EvalPrompt],
    eval_config: EvalConfig,
    repeats: int,
    seed: int,
    critical_below: float | None,
    higher_is_better: bool = True,
    device: str = "cpu",
    cache_dir: Path | None = None,
    outputs_path: Path | None = None,
) -> tuple[list[Score], dict[str, float]]:
    """Evaluate ``adapter`` served on ``base_model`` (never merged) on ``prompts``.

    Returns one Score per (prompt, repeat) and metrics: ``eval_runtime_s``,
    ``eval_cache_hit`` (1.0 or 0.0), ``eval_generation_s``, ``eval_samples``,
    ``eval_score_<category>`` (mean per category, unscorable answers left out) and, when an
    ``nll`` scorer is configured, ``eval_nll_<category>`` (mean assistant-token cross-entropy,
    nats). With ``eval.judge``: ``judge_samples`` (answers judged), ``judge_errors``
    (answers left unscored), ``judge_batch`` (1.0 in batch mode) and what the judge spent,
    ``judge_cost_usd``, ``judge_input_tokens``, ``judge_output_tokens``,
    ``judge_cache_read_tokens``, ``judge_cache_write_tokens``, ``judge_calls`` (0 on a cache
    hit). With ``cache_dir`` (and ``eval_config.cache``), an identical evaluation is read back
    instead of recomputed. ``outputs_path`` receives the generated answers as JSONL when given
    (judged answers with the judge's components, rationale or error).
    """
    started = time.monotonic()
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    if not prompts:
        raise ValueError("no eval prompts to evaluate")
    judge_config = eval_config.judge_config()
    judged_ids = {p.id for p in prompts if eval_config.judged(p.category)}
    deterministic = [p for p in prompts if p.id not in judged_ids]
    base.validate_prompts(deterministic, eval_config)
    plan = {p.id: base.scorers_for(p, eval_config) for p in deterministic}
    if judge_config is not None and judge_config.categories:
        absent = sorted(set(judge_config.categories) - {p.category for p in prompts})
        if absent:
            log.warning(
                "eval.judge.categories names categories without eval prompts: %s", ", ".join(absent)
            )

    cache = EvalCache(cache_dir) if cache_dir is not None and eval_config.cache else None
    key = ""
    if cache is not None:
        key = cache_key(
            base_model=base_model,
            adapter=adapter,
            prompts=prompts,
            eval_config=eval_config,
            repeats=repeats,
            seed=seed,
            device=device,
        )
        hit = cache.get(key)
        if hit is not None:
            cached, cached_metrics = hit
            hit_scores = [
                Score(
                    prompt_id=s.prompt_id,
                    category=s.category,
                    score=s.score,
                    repeat=s.repeat,
                    critical=s.ok and is_critical(s.score, critical_below, higher_is_better),
                    components=s.components,
                    meta=s.meta,
                    error=s.error,
                )
                for s in cached
            ]
            out_metrics = dict(cached_metrics)
            for name in JUDGE_METRICS:  # the judge was not called this time
                if name in out_metrics:
                    out_metrics[name] = 0.0
            out_metrics["eval_cache_hit"] = 1.0
            out_metrics["eval_runtime_s"] = round(time.monotonic() - started, 4)
            return hit_scores, out_metrics

    judge: LLMJudge | None = None
    if judge_config is not None and judged_ids:
        # Before generation: a missing key fails in a second, not after the answers.
        judge = make_judge(judge_config)

    from probes.evaluation.generate import make_backend

    backend = make_backend(eval_config.generation, base_model, adapter, device=device)
    try:
        gen_started = time.monotonic()
        outputs = backend.generate([p.prompt for p in prompts], repeats=repeats, seed=seed)
        generation_s = time.monotonic() - gen_started
        nll_by_id: dict[str, float] = {}
        need_nll = [p for p in deterministic if any(s.name == "nll" for s in plan[p.id])]
        if need_nll:
            values = backend.reference_nll([(p.prompt, p.reference or "") for p in need_nll])
            nll_by_id = {p.id: v for p, v in zip(need_nll, values, strict=True)}
    finally:
        backend.close()

    judgements: dict[tuple[str, int], JudgeResult] = {}
    judge_results: list[JudgeResult] = []
    if judge is not None and judge_config is not None:
        items = [
            (prompt, repeat, answer)
            for prompt, answers in zip(prompts, outputs, strict=True)
            if prompt.id in judged_ids
            for repeat, answer in enumerate(answers)
        ]
        judge_results = _judge_answers(judge, items)
        if len(judge_results) != len(items):
            raise JudgeRunError(
                f"the judge returned {len(judge_results)} results for {len(items)} answers"
            )
        for (prompt, repeat, _), result in zip(items, judge_results, strict=True):
            judgements[(prompt.id, repeat)] = result
    secrets = client_secrets(judge._client) if judge is not None else []

    scores: list[Score] = []
    by_category: dict[str, list[float]] = defaultdict(list)
    for prompt, answers in zip(prompts, outputs, strict=True):
        for repeat, answer in enumerate(answers):
            if prompt.id in judged_ids:
                assert judge_config is not None
                score = judged_score(
                    judgements[(prompt.id, repeat)],
                    repeat,
                    judge_config,
                    critical_below=critical_below,
                    higher_is_better=higher_is_better,
                    secrets=secrets,
                )
            else:
                value, components = score_output(
                    prompt, answer, plan[prompt.id], nll_by_id.get(prompt.id)
                )
                score = Score(
                    prompt_id=prompt.id,
                    category=prompt.category,
                    score=value,
                    repeat=repeat,
                    critical=is_critical(value, critical_below, higher_is_better),
                    components=components,
                )
            scores.append(score)
            if score.ok:
                by_category[prompt.category].append(score.score)

    out: dict[str, float] = {
        "eval_generation_s": round(generation_s, 4),
        "eval_samples": float(len(scores)),
    }
    for category, values in sorted(by_category.items()):
        out[f"eval_score_{category}"] = sum(values) / len(values)
    nll_by_category: dict[str, list[float]] = defaultdict(list)
    for prompt in deterministic:
        if prompt.id in nll_by_id and math.isfinite(nll_by_id[prompt.id]):
            nll_by_category[prompt.category].append(nll_by_id[prompt.id])
    for category, values in sorted(nll_by_category.items()):
        out[f"eval_nll_{category}"] = sum(values) / len(values)
    if judge_config is not None:
        out.update(_judge_metrics(judge_results, judge_config))
        if out["judge_errors"]:
            log.warning(
                "the judge could not score %d of %d answers (recorded as judge_error, "
                "left out of comparisons)",
                int(out["judge_errors"]),
                len(judge_results),
            )

    if outputs_path is not None:
        outputs_path.parent.mkdir(parents=True, exist_ok=True)
        with outputs_path.open("w", encoding="utf-8") as fh:
            for prompt, answers in zip(prompts, outputs, strict=True):
                for repeat, answer in enumerate(answers):
                    row: dict[str, Any] = {
                        "prompt_id": prompt.id,
                        "repeat": repeat,
                        "output": answer,
                    }
                    if (prompt.id, repeat) in judgements:
                        row["judge"] = _judgement_record(judgements[(prompt.id, repeat)], secrets)
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    if cache is not None:
        if any(r.api_failure for r in judge_results):
            # An outage says nothing about the answers: a later evaluation should retry.
            log.warning("not caching this evaluation: some judge calls failed at the API")
        else:
            cache.put(key, scores, out, {p.id: a for p, a in zip(prompts, outputs, strict=True)})
    out["eval_cache_hit"] = 0.0
    out["eval_runtime_s"] = round(time.monotonic() - started, 4)
    return scores, out


def _judge_metrics(results: Sequence[JudgeResult], config: JudgeConfig) -> dict[str, float]:
    usage = total_usage(results)
    return {
        "judge_samples": float(len(results)),
        "judge_errors": float(sum(1 for r in results if not r.ok)),
        "judge_batch": 1.0 if config.batch else 0.0,
        "judge_cost_usd": float(usage.cost_usd),
        "judge_input_tokens": float(usage.input_tokens),
        "judge_output_tokens": float(usage.output_tokens),
        "judge_cache_read_tokens": float(usage.cache_read_tokens),
        "judge_cache_write_tokens": float(usage.cache_write_tokens),
        "judge_calls": float(usage.calls),
    }


def _judgement_record(result: JudgeResult, secrets: Sequence[str]) -> dict[str, Any]:
    """What outputs.jsonl keeps of one judgement (for a human reading the answers)."""
    record: dict[str, Any] = {
        "status": result.status.value,
        "score": result.score,
        "components": result.components,
        "judge_overall": result.judge_overall,
        "rationale": result.rationale,
        "attempts": result.attempts,
    }
    if result.error:
        record["error"] = redact(result.error, secrets)
    return record
