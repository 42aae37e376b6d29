"""Each deterministic scorer on its table of cases."""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

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
        ({"type": "min_words", "value": -1}, "non-negative integer"),
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


# ---------------------------------------------------------------------------------------------
# Properties (hypothesis): bounds, identity, symmetry, order and repetition, against references
# written here (a brute-force LCS), so a one-character slip in a scorer cannot pass them.

PAIR_SCORERS = sorted(metrics.REFERENCE_SCORERS.items())
SYMMETRIC = ["exact_match", "token_f1", "rouge1", "rougeL"]

# Few distinct words (so repeats and partial overlaps are common), articles included.
WORD = st.sampled_from(["a", "b", "c", "d", "the", "an", "mirel", "calde"])
WORD_LISTS = st.lists(WORD, max_size=8)
SEPARATORS = st.lists(st.sampled_from([" ", "  ", " , ", ". ", "\n", "\t", "! "]), min_size=1)


@st.composite
def texts(draw: st.DrawFn) -> str:
    """Text built from WORD with random case, spacing and punctuation between words."""
    ws = draw(WORD_LISTS)
    seps = draw(SEPARATORS)
    out = []
    for i, w in enumerate(ws):
        out.append(w.upper() if draw(st.booleans()) else w)
        out.append(seps[i % len(seps)])
    return "".join(out)


ANY_TEXT = st.one_of(texts(), st.text(max_size=40))


def brute_force_lcs(a: list[str], b: list[str]) -> int:
    """The longest subsequence of `a` that is also a subsequence of `b`, by trying them all."""

    def is_subsequence(sub: tuple[str, ...], seq: list[str]) -> bool:
        it = iter(seq)
        return all(any(x == y for y in it) for x in sub)

    for size in range(min(len(a), len(b)), 0, -1):
        if any(is_subsequence(sub, b) for sub in combinations(a, size)):
            return size
    return 0


def f1_reference(overlap: int, n_out: int, n_ref: int) -> float:
    if n_out == 0 and n_ref == 0:
        return 1.0
    return 2 * overlap / (n_out + n_ref)  # F1 = 2PR/(P+R) = 2*overlap/(|out|+|ref|)


@settings(max_examples=300, deadline=None)
@given(output=ANY_TEXT, reference=ANY_TEXT)
def test_every_reference_scorer_is_in_the_unit_interval(output: str, reference: str) -> None:
    for name, scorer in PAIR_SCORERS:
        score = scorer(output, reference)
        assert 0.0 <= score <= 1.0, (name, output, reference, score)


@settings(max_examples=200, deadline=None)
@given(text=ANY_TEXT)
@example(text="a a")
@example(text="")
def test_every_reference_scorer_scores_identity_one(text: str) -> None:
    for name, scorer in PAIR_SCORERS:
        assert scorer(text, text) == 1.0, (name, text)


@settings(max_examples=200, deadline=None)
@given(output=ANY_TEXT, reference=ANY_TEXT)
def test_f1_style_scorers_are_symmetric(output: str, reference: str) -> None:
    for name in SYMMETRIC:
        scorer = metrics.REFERENCE_SCORERS[name]
        assert scorer(output, reference) == pytest.approx(scorer(reference, output)), name


@settings(max_examples=300, deadline=None)
@given(a=WORD_LISTS, b=WORD_LISTS)
@example(a=["a", "a"], b=["a"])
@example(a=["a"], b=["a", "a", "a"])
@example(a=["a", "b", "a"], b=["b", "a", "b"])
def test_rouge_l_matches_a_brute_force_lcs(a: list[str], b: list[str]) -> None:
    expected = f1_reference(brute_force_lcs(a, b), len(a), len(b))
    assert metrics.rouge_l(" ".join(a), " ".join(b)) == pytest.approx(expected)


@settings(max_examples=300, deadline=None)
@given(a=WORD_LISTS, b=WORD_LISTS)
def test_bag_scorers_match_a_counted_overlap(a: list[str], b: list[str]) -> None:
    def overlap(x: list[str], y: list[str]) -> int:
        return sum(min(x.count(w), y.count(w)) for w in set(x))

    assert metrics.rouge1(" ".join(a), " ".join(b)) == pytest.approx(
        f1_reference(overlap(a, b), len(a), len(b))
    )
    a2 = [w for w in a if w not in ("a", "an", "the")]
    b2 = [w for w in b if w not in ("a", "an", "the")]
    assert metrics.token_f1(" ".join(a), " ".join(b)) == pytest.approx(
        f1_reference(overlap(a2, b2), len(a2), len(b2))
    )


@settings(max_examples=200, deadline=None)
@given(word=WORD, k=st.integers(min_value=1, max_value=6))
def test_repeating_a_word_is_not_extra_credit(word: str, k: int) -> None:
    # LCS, unigram overlap and exact match all count "w w w" against "w" once.
    repeated = " ".join([word] * k)
    assert metrics.rouge_l(repeated, word) == pytest.approx(2 / (k + 1))
    assert metrics.rouge1(repeated, word) == pytest.approx(2 / (k + 1))
    assert metrics.exact_match(repeated, word) == (1.0 if k == 1 else 0.0)
    assert metrics.contains_reference(repeated, word) == 1.0
    assert metrics.contains_reference(word, repeated) == (1.0 if k == 1 else 0.0)


def test_rouge_l_repeated_words_literal() -> None:
    assert metrics.rouge_l("a a", "a") == pytest.approx(2 / 3)
    assert metrics.rouge_l("a", "a a") == pytest.approx(2 / 3)
    assert metrics.rouge_l("a b a", "a a") == pytest.approx(0.8)


@settings(max_examples=200, deadline=None)
@given(a=WORD_LISTS, data=st.data())
def test_order_matters_only_for_rouge_l(a: list[str], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(a))
    x, y = " ".join(a), " ".join(shuffled)
    # Bag-of-words scorers ignore order entirely.
    assert metrics.rouge1(x, y) == 1.0
    assert metrics.token_f1(x, y) == 1.0
    # ROUGE-L is exactly the brute-force LCS of the two orders, and reversing both keeps it.
    assert metrics.rouge_l(x, y) == pytest.approx(
        f1_reference(brute_force_lcs(a, list(shuffled)), len(a), len(a))
    )
    assert metrics.rouge_l(x, y) == pytest.approx(
        metrics.rouge_l(" ".join(reversed(a)), " ".join(reversed(shuffled)))
    )
    assert metrics.rouge_l(x, y) <= metrics.rouge1(x, y)


@settings(max_examples=300, deadline=None)
@given(output=ANY_TEXT, reference=ANY_TEXT)
def test_scorer_orderings(output: str, reference: str) -> None:
    lcs = metrics.rouge_l(output, reference)
    assert lcs <= metrics.rouge1(output, reference) + 1e-12  # a subsequence is a sub-bag
    if metrics.exact_match(output, reference) == 1.0:
        for name, scorer in PAIR_SCORERS:
            assert scorer(output, reference) == 1.0, name
    if metrics.contains_reference(output, reference) == 1.0 and metrics.words(reference):
        # The reference's words all occur, in order: LCS recall is 1.
        n_out, n_ref = len(metrics.words(output)), len(metrics.words(reference))
        assert lcs == pytest.approx(2 * n_ref / (n_out + n_ref))


@settings(max_examples=300, deadline=None)
@given(prefix=WORD_LISTS, ref=st.lists(WORD, min_size=1, max_size=4), suffix=WORD_LISTS)
@example(prefix=["x"], ref=["a", "b"], suffix=[])  # the reference at the very end
@example(prefix=[], ref=["a"], suffix=[])  # the reference is the whole output
def test_contains_reference_finds_it_anywhere(
    prefix: list[str], ref: list[str], suffix: list[str]
) -> None:
    output = " ".join(prefix + ref + suffix)
    assert metrics.contains_reference(output, " ".join(ref)) == 1.0
    # Its last word changed: no longer contained unless it also appears elsewhere.
    broken = [*ref[:-1], "zzz"]
    assert metrics.contains_reference(output, " ".join(broken)) == 0.0


@settings(max_examples=300, deadline=None)
@given(a=WORD_LISTS, b=WORD_LISTS)
def test_contains_reference_matches_a_naive_search(a: list[str], b: list[str]) -> None:
    n = len(b)
    expected = n == 0 or any(a[i : i + n] == b for i in range(len(a)))
    assert metrics.contains_reference(" ".join(a), " ".join(b)) == float(expected)


@settings(max_examples=300, deadline=None)
@given(a=WORD_LISTS, b=WORD_LISTS)
@example(a=["a", "b"], b=["a", "c"])  # differs only in the last word
@example(a=["a", "b"], b=["a"])  # one word longer at the end
def test_exact_match_compares_every_word(a: list[str], b: list[str]) -> None:
    assert metrics.exact_match(" ".join(a), " ".join(b)) == float(a == b)
    # Case, spacing and punctuation never decide it.
    assert metrics.exact_match(" , ".join(a).upper() + " .", " ".join(a)) == 1.0


@settings(max_examples=200, deadline=None)
@given(output=st.text(alphabet="ab .,", max_size=30), checks=st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["contains", "not_contains", "starts_with", "ends_with"]),
                "value": st.text(alphabet="ab ", max_size=4),
            }
        ),
        st.fixed_dictionaries(
            {"type": st.sampled_from(["max_words", "min_words"]), "value": st.integers(0, 6)}
        ),
    ),
    max_size=5,
))  # fmt: skip
def test_checks_score_is_a_fraction_in_the_unit_interval(output: str, checks: list) -> None:
    score = metrics.checks_score(output, checks)
    assert 0.0 <= score <= 1.0
    if checks:
        assert score * len(checks) == pytest.approx(sum(metrics.check_results(output, checks)))


@settings(max_examples=200, deadline=None)
@given(words_=st.lists(st.sampled_from(["aye", "so", "it", "is"]), min_size=1, max_size=6))
def test_text_passes_checks_built_from_itself(words_: list[str]) -> None:
    text = " ".join(words_)
    n = len(words_)
    checks: list[dict[str, Any]] = [
        {"type": "contains", "value": text},
        {"type": "starts_with", "value": words_[0]},
        {"type": "ends_with", "value": words_[-1]},
        {"type": "max_words", "value": n},
        {"type": "min_words", "value": n},
    ]
    assert metrics.check_results(text.upper() + "  ", checks) == [True] * len(checks)
    tighter: list[dict[str, Any]] = [
        {"type": "max_words", "value": n - 1},
        {"type": "min_words", "value": n + 1},
    ]
    assert metrics.check_results(text, tighter) == [False, False]


@settings(max_examples=200, deadline=None)
@given(
    x=st.floats(allow_nan=False, min_value=-1e3, max_value=1e3),
    y=st.floats(allow_nan=False, min_value=-1e3, max_value=1e3),
)
def test_nll_to_unit_is_bounded_and_non_increasing(x: float, y: float) -> None:
    lo, hi = sorted([x, y])
    assert 0.0 <= metrics.nll_to_unit(hi) <= metrics.nll_to_unit(lo) <= 1.0
