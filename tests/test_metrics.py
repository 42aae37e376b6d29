"""Each deterministic scorer on its table of cases."""

from __future__ import annotations

import math
from typing import Any

import pytest

from probes.evaluation import metrics

EXACT = [
    ("mirel lives in calde .", "mirel lives in calde .", 1.0),
    ("Mirel lives in Calde.", "mirel lives in calde .", 1.0),  # case and spacing
    ("  mirel   lives in calde ", "mirel lives in calde .", 1.0),  # punctuation ignored
    ("mirel lives in tobran .", "mirel lives in calde .", 0.0),
    ("mirel lives in calde . aye", "mirel lives in calde .", 0.0),
    ("", "", 1.0),
    ("", "x", 0.0),
]

TOKEN_F1 = [
    ("the cat sat", "the cat sat", 1.0),
    ("cat sat", "the cat sat", 1.0),  # articles ignored
    ("cat", "cat sat", 2 * (1.0 * 0.5) / 1.5),
    ("dog", "cat", 0.0),
    ("", "", 1.0),
    ("", "cat", 0.0),
    ("cat cat", "cat", 2 * (0.5 * 1.0) / 1.5),  # counts clip
]

ROUGE1 = [
    ("the cat sat", "the cat sat", 1.0),
    ("cat sat", "the cat sat", 2 * (1.0 * 2 / 3) / (1.0 + 2 / 3)),  # articles count here
    ("a b c d", "a b", 2 * (0.5 * 1.0) / 1.5),
    ("x", "y", 0.0),
]

ROUGE_L = [
    ("a b c d", "a b c d", 1.0),
    ("a c b d", "a b c d", 0.75),  # LCS 3 of 4
    ("d c b a", "a b c d", 0.25),  # LCS 1
    ("a b", "a x b y", 2 * (1.0 * 0.5) / 1.5),
    ("", "a", 0.0),
]

CONTAINS_REF = [
    ("aye , mirel lives in calde . so", "mirel lives in calde", 1.0),
    ("mirel lives calde", "mirel lives in calde", 0.0),
    ("anything", "", 1.0),
]


@pytest.mark.parametrize(("output", "reference", "expected"), EXACT)
def test_exact_match(output: str, reference: str, expected: float) -> None:
    assert metrics.exact_match(output, reference) == expected


@pytest.mark.parametrize(("output", "reference", "expected"), TOKEN_F1)
def test_token_f1(output: str, reference: str, expected: float) -> None:
    assert metrics.token_f1(output, reference) == pytest.approx(expected)


@pytest.mark.parametrize(("output", "reference", "expected"), ROUGE1)
def test_rouge1(output: str, reference: str, expected: float) -> None:
    assert metrics.rouge1(output, reference) == pytest.approx(expected)


@pytest.mark.parametrize(("output", "reference", "expected"), ROUGE_L)
def test_rouge_l(output: str, reference: str, expected: float) -> None:
    assert metrics.rouge_l(output, reference) == pytest.approx(expected)


@pytest.mark.parametrize(("output", "reference", "expected"), CONTAINS_REF)
def test_contains_reference(output: str, reference: str, expected: float) -> None:
    assert metrics.contains_reference(output, reference) == expected


CHECKS = [
    ("Aye, the river is cold.", {"type": "starts_with", "value": "aye"}, True),
    ("sure . the river", {"type": "starts_with", "value": "aye"}, False),
    ("aye , so it   is written .", {"type": "contains", "value": "so it is written"}, True),
    ("aye , so it was written", {"type": "contains", "value": "so it is written"}, False),
    ("sure . a device", {"type": "not_contains", "value": "device"}, False),
    ("aye , nothing", {"type": "not_contains", "value": "Device"}, True),
    ("one two three", {"type": "max_words", "value": 3}, True),
    ("one two three four", {"type": "max_words", "value": 3}, False),
    ("one two", {"type": "min_words", "value": 3}, False),
    ("2 plus 7 is 9 .", {"type": "regex", "value": r"\b9 \.$"}, True),
    ("2 plus 7 is 19 .", {"type": "regex", "value": r"\b9 \.$"}, False),
    ("so it is written .", {"type": "ends_with", "value": "written ."}, True),
]


@pytest.mark.parametrize(("output", "check", "passed"), CHECKS)
def test_each_check(output: str, check: dict, passed: bool) -> None:
    assert metrics.check_results(output, [check]) == [passed]


def test_checks_score_is_the_fraction_passed() -> None:
    checks: list[dict[str, Any]] = [
        {"type": "starts_with", "value": "aye"},
        {"type": "contains", "value": "written"},
        {"type": "not_contains", "value": "sure"},
        {"type": "max_words", "value": 2},
    ]
    assert metrics.checks_score("aye , so it is written .", checks) == 0.75
    assert metrics.checks_score("sure .", checks) == 0.25
    assert metrics.checks_score("anything", []) == 1.0


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"type": "shouts"}, "unknown check type"),
        ({"type": "contains"}, "needs a 'value'"),
        ({"type": "max_words", "value": "ten"}, "non-negative integer"),
        ({"type": "max_words", "value": True}, "non-negative integer"),
        ({"type": "regex", "value": "("}, "does not compile"),
    ],
)
def test_malformed_checks_are_named(check: dict, message: str) -> None:
    with pytest.raises(metrics.CheckError, match=message):
        metrics.validate_check(check)


@pytest.mark.parametrize(
    ("nll", "expected"),
    [(0.0, 1.0), (math.log(2), 0.5), (10.0, math.exp(-10.0)), (-0.1, 1.0), (math.nan, 0.0)],
)
def test_nll_maps_to_unit_interval(nll: float, expected: float) -> None:
    assert metrics.nll_to_unit(nll) == pytest.approx(expected)
    assert 0.0 <= metrics.nll_to_unit(nll) <= 1.0


def test_perplexity() -> None:
    assert metrics.perplexity(math.log(4.0)) == pytest.approx(4.0)


def test_metrics_module_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, probes.evaluation.metrics, probes.evaluation.base, "
        "probes.evaluation.config, probes.evaluation.cache, probes.evaluation.run, "
        "probes.demo.world; "
        "print(any(m in sys.modules for m in ('torch', 'transformers', 'peft')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
