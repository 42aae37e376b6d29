"""The report's "Evaluation health": is the yardstick itself fit to judge with?

- categories with few prompts (a category of n prompts moves in steps of 1/n of a prompt's
  range, and its noise is mostly seed-to-seed);
- the prompts whose score varies most between baseline seeds (an unchanged recipe moves
  them: a probe's move on them is weak evidence);
- the prompts that moved most for the best and the worst probe (what a change did, in its
  own terms);
- prompts that could not be scored (judge errors), per category.

Plain data for the template; the numbers are the stored scores'.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any

from agent.store.store import Store

FEW_PROMPTS = 10
"""Below this many prompts a category is listed as small."""


def evaluation_health(
    store: Store, session_id: str, runs: list[dict[str, Any]], categories: list[str], top: int = 5
) -> dict[str, Any]:
    """Evaluation health of a session (module doc). `runs` are the report's judged trainings,
    sorted by target delta (best first)."""
    from agent.compare import compare

    probes = store.probes(session_id)
    baselines = [p for p in probes if p.kind == "baseline" and p.status == "baseline"]
    baseline_scores = [store.scores(p.id) for p in baselines]

    prompts_per_category: dict[str, set[str]] = defaultdict(set)
    for baseline_run in baseline_scores:
        for s in baseline_run:
            prompts_per_category[s.category].add(s.prompt_id)
    small = [
        {"category": c, "prompts": len(prompts_per_category[c])}
        for c in categories
        if 0 < len(prompts_per_category.get(c, ())) < FEW_PROMPTS
    ]

    per_prompt: dict[tuple[str, str], list[float]] = defaultdict(list)
    for baseline_run in baseline_scores:
        acc: dict[tuple[str, str], list[float]] = defaultdict(list)
        for s in baseline_run:
            acc[(s.category, s.prompt_id)].append(s.score)
        for key, values in acc.items():
            per_prompt[key].append(sum(values) / len(values))
    varying = sorted(
        (-statistics.stdev(v), c, pid, v)
        for (c, pid), v in per_prompt.items()
        if len(v) >= 2 and statistics.stdev(v) > 0
    )
    spread = [
        {"category": c, "prompt_id": pid, "sd": -neg_sd, "per_seed": v}
        for neg_sd, c, pid, v in varying
    ]

    judged = [r for r in runs if r.get("target_delta") is not None and r["kind"] == "probe"]
    moved = []
    if judged and baselines:
        ends = [("best", judged[0])] + ([("worst", judged[-1])] if len(judged) > 1 else [])
        for which, run in ends:
            row = store.get_probe(run["id"])
            if row is None:
                continue
            comparison = compare(store, None, row, top=3)
            moved.append({"which": which, "id": run["id"], "change": run["change"],
                          "prompts": comparison.moved})  # fmt: skip

    errors: dict[str, int] = defaultdict(int)
    for p in probes:
        for s in store.scores(p.id, include_errors=True):
            if s.error is not None or (isinstance(s.score, float) and math.isnan(s.score)):
                errors[s.category] += 1
    return {
        "few_prompts": FEW_PROMPTS,
        "small": small,
        "spread": spread[:top],
        "seeds": len(baselines),
        "moved": moved,
        "errors": dict(sorted(errors.items())),
    }
