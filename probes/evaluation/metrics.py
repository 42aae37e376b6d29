"""Deterministic scorers: pure functions of text, each returning a number in [0, 1].

No heavy imports here (no torch): these run anywhere, and tests exercise them on tables.

Text normalization is shared: lower case, whitespace collapsed. Reference-based scorers compare
*words* (``\\w+`` runs), so punctuation and spacing differences ("mirel." vs "mirel .") never
decide a score. Checks (IFEval-style, for off-target guards) look at the normalized text, so
``starts_with: "aye ,"`` and ``contains: "so it is written"`` are case- and spacing-insensitive.

Perplexity needs the model, so it is computed in probes/evaluation/generate.py; here
:func:`nll_to_unit` maps a mean per-token negative log-likelihood onto [0, 1] as
``exp(-nll)``: the geometric-mean probability the model gives each reference token (1 is a
perfect prediction, 0.5 is "two equally likely choices per token"). Lower NLL is better, so the
mapped score is higher-is-better like every other scorer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_WORD = re.compile(r"\w+", re.UNICODE)
_SPACE = re.compile(r"\s+")
_ARTICLES = frozenset({"a", "an", "the"})


def normalize(text: str) -> str:
    """Lower case, whitespace collapsed and stripped."""
    return _SPACE.sub(" ", text.lower()).strip()


def words(text: str) -> list[str]:
    """The lower-cased word tokens of ``text`` (punctuation dropped)."""
    return _WORD.findall(text.lower())


def exact_match(output: str, reference: str) -> float:
    """1.0 when the output's words equal the reference's words, else 0.0."""
    return 1.0 if words(output) == words(reference) else 0.0


def contains_reference(output: str, reference: str) -> float:
    """1.0 when the reference's words appear as a contiguous run in the output's words."""
    out, ref = words(output), words(reference)
    if not ref:
        return 1.0
    n = len(ref)
    return 1.0 if any(out[i : i + n] == ref for i in range(len(out) - n + 1)) else 0.0


def _f1(overlap: int, n_out: int, n_ref: int) -> float:
    if n_out == 0 and n_ref == 0:
        return 1.0
    if overlap == 0:
        return 0.0
    precision, recall = overlap / n_out, overlap / n_ref
    return 2 * precision * recall / (precision + recall)


def token_f1(output: str, reference: str) -> float:
    """SQuAD-style token F1: bag-of-words overlap, articles (a, an, the) ignored."""
    out = [w for w in words(output) if w not in _ARTICLES]
    ref = [w for w in words(reference) if w not in _ARTICLES]
    overlap = sum((Counter(out) & Counter(ref)).values())
    return _f1(overlap, len(out), len(ref))


def rouge1(output: str, reference: str) -> float:
    """ROUGE-1 F-measure: unigram overlap of all words."""
    out, ref = words(output), words(reference)
    overlap = sum((Counter(out) & Counter(ref)).values())
    return _f1(overlap, len(out), len(ref))


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, start=1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(output: str, reference: str) -> float:
    """ROUGE-L F-measure: longest common subsequence of words."""
    out, ref = words(output), words(reference)
    return _f1(_lcs(out, ref), len(out), len(ref))


# ---------------------------------------------------------------------------------------------
# Verifiable checks


class CheckError(ValueError):
    """A malformed check (unknown type, missing or wrongly typed value)."""


def _check_contains(text: str, value: Any) -> bool:
    return normalize(str(value)) in text


def _check_not_contains(text: str, value: Any) -> bool:
    return normalize(str(value)) not in text


def _check_starts_with(text: str, value: Any) -> bool:
    return text.startswith(normalize(str(value)))


def _check_ends_with(text: str, value: Any) -> bool:
    return text.endswith(normalize(str(value)))


def _check_regex(text: str, value: Any) -> bool:
    return re.search(str(value), text) is not None


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckError(f"expected a non-negative integer, got {value!r}")
    return value


def _check_max_words(text: str, value: Any) -> bool:
    return len(text.split()) <= _count(value)


def _check_min_words(text: str, value: Any) -> bool:
    return len(text.split()) >= _count(value)


CHECKS: Mapping[str, Callable[[str, Any], bool]] = {
    "contains": _check_contains,
    "not_contains": _check_not_contains,
    "starts_with": _check_starts_with,
    "ends_with": _check_ends_with,
    "regex": _check_regex,
    "max_words": _check_max_words,
    "min_words": _check_min_words,
}
"""Check type -> predicate on the normalized output. Counts are whitespace-separated words."""


def validate_check(check: Mapping[str, Any]) -> None:
    """Raise :class:`CheckError` when a check cannot be evaluated."""
    kind = check.get("type")
    if kind not in CHECKS:
        raise CheckError(f"unknown check type {kind!r}; expected one of {sorted(CHECKS)}")
    if "value" not in check:
        raise CheckError(f"check {kind!r} needs a 'value'")
    if kind in {"max_words", "min_words"}:
        _count(check["value"])
    if kind == "regex":
        try:
            re.compile(str(check["value"]))
        except re.error as exc:
            raise CheckError(f"regex {check['value']!r} does not compile: {exc}") from None


def check_results(output: str, checks: Sequence[Mapping[str, Any]]) -> list[bool]:
    """Pass/fail of each check on ``output``."""
    text = normalize(output)
    results = []
    for check in checks:
        validate_check(check)
        results.append(bool(CHECKS[check["type"]](text, check["value"])))
    return results


def checks_score(output: str, checks: Sequence[Mapping[str, Any]]) -> float:
    """The fraction of checks passed (1.0 when there are none)."""
    if not checks:
        return 1.0
    results = check_results(output, checks)
    return sum(results) / len(results)


# ---------------------------------------------------------------------------------------------
# Perplexity


def nll_to_unit(nll: float) -> float:
    """Map a mean per-token negative log-likelihood (nats) onto [0, 1] as ``exp(-nll)``."""
    if math.isnan(nll):
        return 0.0
    return math.exp(-max(0.0, nll))


def perplexity(nll: float) -> float:
    """``exp(nll)``: the per-token perplexity of a mean negative log-likelihood."""
    return math.exp(nll)


REFERENCE_SCORERS: Mapping[str, Callable[[str, str], float]] = {
    "exact_match": exact_match,
    "token_f1": token_f1,
    "rouge1": rouge1,
    "rougeL": rouge_l,
    "contains_reference": contains_reference,
}
"""Scorers that compare the output to the prompt's ``reference``, by ScorerConfig name."""
