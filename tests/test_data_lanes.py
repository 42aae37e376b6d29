"""Data lanes, pure: the manifest (errors name file, line and key), mixtures (natural, stratified,
proportional, weights) and curricula (the order asked), deterministic given the seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probes.data import DataSettings, build_training_set, training_set_hash
from probes.data.curriculum import CurriculumError, order, passes
from probes.data.manifest import Example, ManifestError, load_manifest, load_source, parse_manifest
from probes.data.mixture import (
    MixtureError,
    apply_weights,
    class_counts,
    floored_shares,
    largest_remainder,
    mix,
)


def ex(
    i: int,
    category: str = "a",
    source: str = "s",
    difficulty: float | None = None,
    pattern: str | None = None,
) -> Example:
    return Example(
        id=f"{source}{i}",
        source=source,
        kind="sft",
        category=category,
        messages=(("user", f"q{i}"), ("assistant", f"a{i}")),
        prompt=f"q{i}",
        completion=f"a{i}",
        difficulty=difficulty,
        pattern=pattern,
    )


# ------------------------------------------------------------------ manifest


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def sft_line(category: str = "facts", **extra: object) -> str:
    return json.dumps(
        {
            "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            "category": category,
            **extra,
        }
    )


def test_manifest_loads_and_resolves_paths(tmp_path: Path) -> None:
    write(tmp_path / "sft" / "f.jsonl", sft_line(difficulty=1, pattern="yes") + "\n\n" + sft_line())
    m = load_manifest(
        write(
            tmp_path / "manifest.yaml",
            "sources:\n"
            "  - {name: f, path: sft/f.jsonl, kind: sft, categories: [facts], weight: 2}\n",
        )
    )
    (src,) = m.sources
    assert src.weight == 2.0 and m.source_path(src) == (tmp_path / "sft" / "f.jsonl").resolve()
    examples = load_source(m, src)
    assert [e.id for e in examples] == ["f:1", "f:3"]  # default id: source:line
    assert examples[0].difficulty == 1.0 and examples[0].pattern == "yes"
    assert examples[0].prompt == "q" and examples[0].completion == "a"


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "sources:\n  - {name: f, path: x, kind: sft, categories: [a], wieght: 1}\n",
            r"manifest.yaml:2: sources.0.wieght: unknown key",
        ),
        (
            "sources:\n  - name: f\n    path: x\n    kind: sfft\n    categories: [a]\n",
            r"manifest.yaml:4: sources.0.kind",
        ),
        (
            "sources:\n  - {name: f, path: x, kind: sft, categories: [a], weight: -1}\n",
            r"manifest.yaml:2: sources.0.weight",
        ),
        (
            "sources:\n  - {name: f, path: x, kind: sft, categories: [a]}\n"
            "  - {name: f, path: y, kind: sft, categories: [a]}\n",
            r"used twice",
        ),
        ("sources: [\n", r"not valid YAML"),
    ],
)
def test_manifest_errors_name_line_and_key(tmp_path: Path, yaml_text: str, expected: str) -> None:
    with pytest.raises(ManifestError, match=expected):
        parse_manifest(yaml_text, tmp_path / "manifest.yaml")


@pytest.mark.parametrize(
    ("kind", "line", "expected"),
    [
        ("sft", sft_line("nope"), r"f.jsonl:1: key 'category' must be one of"),
        (
            "sft",
            json.dumps({"messages": [{"role": "user", "content": "q"}], "category": "x"}),
            r"f.jsonl:1: key 'messages'",
        ),
        (
            "sft",
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": "q"},
                        {"role": "user", "content": "a"},
                    ],
                    "category": "x",
                }
            ),
            "last message",
        ),
        ("sft", sft_line(difficulty="hard"), r"key 'difficulty' must be a finite number"),
        ("sft", "{not json", r"f.jsonl:1: not valid JSON"),
        (
            "preference",
            json.dumps({"prompt": "p", "chosen": "c", "category": "x"}),
            r"key 'rejected' is required",
        ),
    ],
)
def test_source_errors_name_file_line_and_key(
    tmp_path: Path, kind: str, line: str, expected: str
) -> None:
    write(tmp_path / "f.jsonl", line + "\n")
    m = parse_manifest(
        f"sources:\n  - {{name: f, path: f.jsonl, kind: {kind}, categories: [facts, x]}}\n",
        tmp_path / "manifest.yaml",
    )
    with pytest.raises(ManifestError, match=expected):
        load_source(m, m.sources[0])


def test_duplicate_ids_and_single_category_default(tmp_path: Path) -> None:
    line = json.dumps({"id": "x", "prompt": "p", "chosen": "c", "rejected": "r"})
    write(tmp_path / "p.jsonl", line + "\n" + line + "\n")
    text = "sources:\n  - {name: p, path: p.jsonl, kind: preference, categories: [f]}\n"
    m = parse_manifest(text, tmp_path / "manifest.yaml")
    with pytest.raises(ManifestError, match=r"p.jsonl:2: duplicate id 'x'"):
        load_source(m, m.sources[0])


# ------------------------------------------------------------------ mixture


def test_weights_are_repeat_factors_and_zero_leaves_a_source_out() -> None:
    by_source = {
        "a": [ex(i, source="a") for i in range(10)],
        "b": [ex(i, source="b") for i in range(4)],
    }
    pool = apply_weights(by_source, {"a": 0.5, "b": 2.0}, seed=0)
    assert class_counts(pool, "category") == {"a": 5 + 8}
    assert sum(e.source == "a" for e in pool) == 5 and sum(e.source == "b" for e in pool) == 8
    assert len({e.id for e in pool if e.source == "a"}) == 5  # a half, no repeats
    out = mix(by_source, weights={"b": 0.0}, seed=3)
    assert {e.source for e in out} == {"a"}
    with pytest.raises(MixtureError, match="nothing to train on"):
        mix(by_source, weights={"a": 0, "b": 0})


def _skewed() -> dict[str, list[Example]]:
    # 70 yes / 25 no / 5 maybe: seed 000's rare-class situation.
    items = (
        [ex(i, pattern="yes") for i in range(70)]
        + [ex(i + 70, pattern="no") for i in range(25)]
        + [ex(i + 95, pattern="maybe") for i in range(5)]
    )
    return {"s": items}


@pytest.mark.parametrize(
    ("strategy", "floor", "total", "expected"),
    [
        ("natural", 0.0, None, {"yes": 70, "no": 25, "maybe": 5}),
        ("stratified", 0.0, None, {"yes": 33, "no": 33, "maybe": 34}),  # ties by name
        ("stratified", 0.0, 30, {"yes": 10, "no": 10, "maybe": 10}),
        # maybe raised to 20 %, yes/no keep their 70:25 ratio in the remaining 80 %.
        ("proportional", 0.2, None, {"yes": 59, "no": 21, "maybe": 20}),
        ("proportional", 0.0, None, {"yes": 70, "no": 25, "maybe": 5}),
        ("proportional", 0.3, 50, {"yes": 20, "no": 15, "maybe": 15}),
    ],
)
def test_strategies_give_the_asked_proportions(
    strategy: str, floor: float, total: int | None, expected: dict[str, int]
) -> None:
    out = mix(_skewed(), strategy=strategy, by="pattern", floor=floor, num_examples=total, seed=7)
    assert class_counts(out, "pattern") == dict(sorted(expected.items()))


def test_stratified_by_category_and_missing_patterns() -> None:
    by_source = {"s": [ex(i, category="a") for i in range(9)] + [ex(9, category="b")]}
    out = mix(by_source, strategy="stratified", by="category", seed=1)
    assert class_counts(out) == {"a": 5, "b": 5}  # the rare class is repeated
    assert class_counts(out, "pattern") == {"other": 10}


def test_floored_shares_and_rounding() -> None:
    shares = floored_shares({"x": 98, "y": 1, "z": 1}, 0.1)
    assert shares["y"] == pytest.approx(0.1) and shares["z"] == pytest.approx(0.1)
    assert sum(shares.values()) == pytest.approx(1.0)
    with pytest.raises(MixtureError, match="mixture_floor"):
        floored_shares({"x": 1, "y": 1, "z": 1}, 0.5)
    assert largest_remainder({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, 10) == {"a": 4, "b": 3, "c": 3}


def test_mixture_is_deterministic_given_the_seed() -> None:
    kwargs = {"strategy": "proportional", "by": "pattern", "floor": 0.1, "num_examples": 40}
    a = mix(_skewed(), seed=5, **kwargs)  # type: ignore[arg-type]
    assert a == mix(_skewed(), seed=5, **kwargs)  # type: ignore[arg-type]
    assert a != mix(_skewed(), seed=6, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(MixtureError, match="mixture must be one of"):
        mix(_skewed(), strategy="uniform")


# ------------------------------------------------------------------ curriculum


def test_curricula_order_as_asked() -> None:
    items = [
        ex(0, "b", "x", 3.0),
        ex(1, "a", "y", 1.0),
        ex(2, "b", "y", 2.0),
        ex(3, "a", "x", 0.0),
        ex(4, "c", "x", 2.0),
    ]
    assert [e.difficulty for e in order(items, "easy_to_hard", seed=1)] == [0, 1, 2, 2, 3]
    assert [e.difficulty for e in order(items, "hard_to_easy", seed=1)] == [3, 2, 2, 1, 0]
    first = order(items, "source_first", seed=1, source="y")
    assert [e.source for e in first] == ["y", "y", "x", "x", "x"]
    blocks = order(items, "category_blocks", seed=1)
    assert [e.category for e in blocks] == ["a", "a", "b", "b", "c"]
    shuffled = order(items, "shuffle", seed=1)
    assert sorted(e.id for e in shuffled) == sorted(e.id for e in items)
    assert shuffled == order(items, "shuffle", seed=1)
    assert any(order(items, "shuffle", seed=s) != shuffled for s in range(2, 6))


def test_curriculum_errors() -> None:
    items = [ex(0, difficulty=1.0), ex(1)]
    with pytest.raises(CurriculumError, match="needs a 'difficulty'"):
        order(items, "easy_to_hard")
    with pytest.raises(CurriculumError, match="curriculum_source 'zz' has no examples"):
        order(items, "source_first", source="zz")
    with pytest.raises(CurriculumError, match="must be one of"):
        order(items, "random")


def test_passes_repeat_the_curriculum_per_pass() -> None:
    items = [ex(i, difficulty=float(i)) for i in range(4)]
    seq = passes(items, 10, "easy_to_hard", seed=0)
    assert [e.difficulty for e in seq] == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    seq = passes(items, 8, "shuffle", seed=0)
    assert sorted(e.id for e in seq[:4]) == sorted(e.id for e in seq[4:])


# ------------------------------------------------------------------ composed


def test_build_training_set_record_is_reproducible(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl", "\n".join(sft_line("a", id=f"a{i}") for i in range(6)))
    write(tmp_path / "b.jsonl", "\n".join(sft_line("b", id=f"b{i}") for i in range(2)))
    write(tmp_path / "p.jsonl", json.dumps({"prompt": "p", "chosen": "c", "rejected": "r"}))
    m = load_manifest(
        write(
            tmp_path / "manifest.yaml",
            (
                "sources:\n"
                "  - {name: a, path: a.jsonl, kind: sft, categories: [a]}\n"
                "  - {name: b, path: b.jsonl, kind: sft, categories: [b], weight: 2}\n"
                "  - {name: p, path: p.jsonl, kind: preference, categories: [a]}\n"
            ),
        )
    )
    settings = DataSettings(mixture="stratified", curriculum="category_blocks")
    one = build_training_set(m, settings, kind="sft", seed=3, total=20)
    two = build_training_set(m, settings, kind="sft", seed=3, total=20)
    assert one.record() == two.record()
    rec = one.record()
    assert rec["num_examples"] == 20 and rec["pool_per_category"] == {"a": 5, "b": 5}
    assert rec["per_source"] == {"a": 5, "b": 5} and rec["unique_examples"] == 7
    assert rec["order"][:5] == [f"a/{e.id}" for e in one.examples[:5]]
    assert rec["hash"] == training_set_hash(one.examples)
    no_b = build_training_set(m, DataSettings(weights={"b": 0}), kind="sft", seed=3)
    assert no_b.record()["per_category"] == {"a": 6}
    with pytest.raises(MixtureError, match="weight_zz"):
        build_training_set(m, DataSettings(weights={"zz": 1}), kind="sft", seed=3)
    prefs = build_training_set(m, DataSettings(), kind="preference", seed=0, total=3)
    assert [e.source for e in prefs.examples] == ["p", "p", "p"]
