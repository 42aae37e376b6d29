"""The evaluation entry point built-in trainers call after training: :func:`evaluate_adapter`.

One call generates answers for every prompt (``repeats`` per prompt), scores each with the
scorers configured for its category, and returns one :class:`~probes.spec.Score` per
(prompt, repeat) on the common scale (0-10 by default) plus evaluation metrics.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from probes.evaluation import base, metrics
from probes.evaluation.cache import EvalCache, cache_key
from probes.evaluation.config import EvalConfig, ScorerConfig
from probes.spec import EvalPrompt, Score


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
    ``eval_score_<category>`` (mean per category) and, when an ``nll`` scorer is configured,
    ``eval_nll_<category>`` (mean assistant-token cross-entropy, nats).
    With ``cache_dir`` (and ``eval_config.cache``), an identical evaluation is read back instead
    of recomputed. ``outputs_path`` receives the generated answers as JSONL when given.
    """
    started = time.monotonic()
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    if not prompts:
        raise ValueError("no eval prompts to evaluate")
    base.validate_prompts(prompts, eval_config)
    plan = {p.id: base.scorers_for(p, eval_config) for p in prompts}

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
                    critical=is_critical(s.score, critical_below, higher_is_better),
                    components=s.components,
                )
                for s in cached
            ]
            out_metrics = dict(cached_metrics)
            out_metrics["eval_cache_hit"] = 1.0
            out_metrics["eval_runtime_s"] = round(time.monotonic() - started, 4)
            return hit_scores, out_metrics

    from probes.evaluation.generate import make_backend

    backend = make_backend(eval_config.generation, base_model, adapter, device=device)
    try:
        gen_started = time.monotonic()
        outputs = backend.generate([p.prompt for p in prompts], repeats=repeats, seed=seed)
        generation_s = time.monotonic() - gen_started
        nll_by_id: dict[str, float] = {}
        need_nll = [p for p in prompts if any(s.name == "nll" for s in plan[p.id])]
        if need_nll:
            values = backend.reference_nll([(p.prompt, p.reference or "") for p in need_nll])
            nll_by_id = {p.id: v for p, v in zip(need_nll, values, strict=True)}
    finally:
        backend.close()

    scores: list[Score] = []
    by_category: dict[str, list[float]] = defaultdict(list)
    for prompt, answers in zip(prompts, outputs, strict=True):
        for repeat, answer in enumerate(answers):
            value, components = score_output(
                prompt, answer, plan[prompt.id], nll_by_id.get(prompt.id)
            )
            scores.append(
                Score(
                    prompt_id=prompt.id,
                    category=prompt.category,
                    score=value,
                    repeat=repeat,
                    critical=is_critical(value, critical_below, higher_is_better),
                    components=components,
                )
            )
            by_category[prompt.category].append(value)

    out: dict[str, float] = {
        "eval_generation_s": round(generation_s, 4),
        "eval_samples": float(len(scores)),
    }
    for category, values in sorted(by_category.items()):
        out[f"eval_score_{category}"] = sum(values) / len(values)
    nll_by_category: dict[str, list[float]] = defaultdict(list)
    for prompt in prompts:
        if prompt.id in nll_by_id and math.isfinite(nll_by_id[prompt.id]):
            nll_by_category[prompt.category].append(nll_by_id[prompt.id])
    for category, values in sorted(nll_by_category.items()):
        out[f"eval_nll_{category}"] = sum(values) / len(values)

    if outputs_path is not None:
        outputs_path.parent.mkdir(parents=True, exist_ok=True)
        with outputs_path.open("w", encoding="utf-8") as fh:
            for prompt, answers in zip(prompts, outputs, strict=True):
                for repeat, answer in enumerate(answers):
                    row = {"prompt_id": prompt.id, "repeat": repeat, "output": answer}
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    if cache is not None:
        cache.put(key, scores, out, {p.id: a for p, a in zip(prompts, outputs, strict=True)})
    out["eval_cache_hit"] = 0.0
    out["eval_runtime_s"] = round(time.monotonic() - started, 4)
    return scores, out
