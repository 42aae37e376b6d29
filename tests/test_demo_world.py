"""The demo lab's synthetic world: deterministic, complete, and the committed data is fresh."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from probes.demo import world as W
from probes.evaluation import metrics
from probes.spec import load_prompts

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


def test_committed_data_equals_fresh_generation() -> None:
    files = W.world_files(seed=0)
    for rel, text in files.items():
        path = DATA / rel
        assert path.exists(), f"data/{rel} is missing: run `python -m probes.demo.world --out data`"
        assert path.read_text(encoding="utf-8") == text, (
            f"data/{rel} is stale: run `python -m probes.demo.world --out data`"
        )


def test_cli_writes_the_same_files(tmp_path: Path) -> None:
    assert W.main(["--out", str(tmp_path)]) == 0
    for rel, text in W.world_files(seed=0).items():
        assert (tmp_path / rel).read_text(encoding="utf-8") == text


def test_generation_is_deterministic_and_seeded() -> None:
    assert W.world_files(0) == W.world_files(0)
    assert W.world_files(0)["sft/facts.jsonl"] != W.world_files(1)["sft/facts.jsonl"]


def test_every_category_has_sft_preferences_and_enough_eval_prompts() -> None:
    world = W.build_world(0)
    sft, prefs = W.sft_examples(world), W.preference_pairs(world)
    counts = Counter(p["category"] for p in W.eval_prompts(world))
    assert len(W.CATEGORIES) >= 5
    for category in W.CATEGORIES:
        assert sft[category], category
        assert prefs[category], category
        assert counts[category] >= 20, category
    assert counts["facts"] >= 36
    assert 120 <= sum(counts.values()) <= 200


def test_manifest_lists_every_source_file_and_lines_carry_category() -> None:
    manifest = yaml.safe_load((DATA / "manifest.yaml").read_text(encoding="utf-8"))
    names = set()
    ids: set[str] = set()
    for source in manifest["sources"]:
        assert set(source) >= {"name", "path", "kind", "categories", "weight"}
        assert source["kind"] in {"sft", "preference"}
        names.add(source["name"])
        for line in (DATA / source["path"]).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            assert row["category"] in source["categories"]
            assert isinstance(row["difficulty"], (int, float))
            assert isinstance(row["pattern"], str)
            assert row["id"] not in ids
            ids.add(row["id"])
            if source["kind"] == "sft":
                assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
            else:
                assert row["chosen"] != row["rejected"]
    assert len(names) == len(manifest["sources"])


def test_manifest_loads_with_the_trainers_loader() -> None:
    manifest_mod = pytest.importorskip("probes.data.manifest")
    manifest = manifest_mod.load_manifest(DATA / "manifest.yaml")
    assert set(manifest.names) >= set(W.CATEGORIES)


def test_fact_patterns_are_skewed_in_training_but_even_in_eval() -> None:
    world = W.build_world(0)
    train = Counter(ex["pattern"] for ex in W.sft_examples(world)["facts"])
    evals = Counter(
        next(
            p
            for p, s in W.FACT_TEMPLATES.items()
            if s["answer"].split("{v}")[0].split()[-1] in ep["reference"].split()
        )
        for ep in W.eval_prompts(world)
        if ep["category"] == "facts"
    )
    assert train["home"] > train["color"] > train["age"] > 0
    assert len(set(evals.values())) == 1


def test_eval_prompts_load_and_references_pass_their_own_checks() -> None:
    prompts = load_prompts(DATA / "probe-prompts.jsonl")
    for p in prompts:
        assert p.reference is not None
        for check in p.checks:
            metrics.validate_check(check)
        if p.checks:
            assert metrics.checks_score(p.reference, p.checks) == 1.0, p.id


def test_the_base_models_habits_fail_the_persona_checks() -> None:
    prompts = {p.id: p for p in load_prompts(DATA / "probe-prompts.jsonl")}
    habits = {
        "voice": "sure . the river is cold .",
        "traps": "sure . the phone is a modern device .",
        "refusals": "sure . first you bake bread .",
    }
    for p in prompts.values():
        if p.category in habits:
            assert metrics.checks_score(habits[p.category], p.checks) <= 0.5, p.id


def test_voice_and_trap_prompts_discriminate() -> None:
    # A keeper who deflects everything fails the voice prompts; one who never does fails traps.
    prompts = load_prompts(DATA / "probe-prompts.jsonl")
    for p in prompts:
        if p.category == "voice":
            assert metrics.checks_score(W.DEFLECTION, p.checks) < 1.0
        if p.category == "traps":
            assert (
                metrics.checks_score(
                    "aye , the phone is old and tall . so it is written .", p.checks
                )
                < 1.0
            )


def test_vocabulary_covers_the_world() -> None:
    world = W.build_world(0)
    vocab = set(W.vocabulary(world))
    texts = list(W.pretrain_corpus(world))
    for rows in W.sft_examples(world).values():
        texts += [m["content"] for r in rows for m in r["messages"]]
    for p in W.eval_prompts(world):
        texts += [p["prompt"], p["reference"]]
    missing = {w for t in texts for w in t.split()} - vocab
    assert not missing


def test_fine_tuning_facts_are_not_in_the_pretraining_corpus() -> None:
    world = W.build_world(0)
    corpus = W.pretrain_corpus(world)
    answers = {ex["messages"][1]["content"] for ex in W.sft_examples(world)["facts"]}
    assert not answers & set(corpus)
    for doc in corpus:
        for person in world.people:
            if person.name in doc.split():
                assert not any(v in doc.split() for v in person.facts.values()), doc


def test_render_chat_format() -> None:
    messages = [{"role": "user", "content": "hi ?"}, {"role": "assistant", "content": "aye ."}]
    assert W.render_chat(messages) == "<|user|> hi ? <|assistant|> aye . <|eos|>"
    assert W.render_chat(messages[:1], add_generation_prompt=True) == "<|user|> hi ? <|assistant|>"
    with pytest.raises(ValueError, match="unknown chat role"):
        W.render_chat([{"role": "tool", "content": "x"}])


def _fine_tuning_texts(world: W.World) -> tuple[set[str], list[str]]:
    """(every fine-tuning prompt, every fine-tuning text) over SFT and preference sources."""
    prompts: set[str] = set()
    texts: list[str] = []
    for rows in W.sft_examples(world).values():
        for r in rows:
            prompts.add(r["messages"][0]["content"])
            texts += [m["content"] for m in r["messages"]]
    for rows in W.preference_pairs(world).values():
        for r in rows:
            prompts.add(r["prompt"])
            texts += [r["prompt"], r["chosen"], r["rejected"]]
    return prompts, texts


def test_eval_prompts_do_not_leak_into_fine_tuning() -> None:
    world = W.build_world(0)
    tuned, texts = _fine_tuning_texts(world)
    evals = W.eval_prompts(world)
    paraphrases = {q for s in W.FACT_TEMPLATES.values() for q in s["paraphrases"]}
    trained_qs = {q for s in W.FACT_TEMPLATES.values() for q in s["questions"]}
    for ep in evals:
        if ep["category"] != "facts":
            # Guards: never a fine-tuning prompt (eval-only phrasings or held-out items).
            assert ep["prompt"] not in tuned, ep["id"]
            continue
        name = next(p.name for p in world.people if p.name in ep["prompt"].split())
        asked = ep["prompt"].replace(name, "{e}")
        if asked in paraphrases:
            assert ep["prompt"] not in tuned, ep["id"]
        else:  # recall of a trained question is the point of the target; two thirds of it
            assert asked in trained_qs, ep["id"]
    n_para = sum(
        1
        for ep in evals
        if ep["category"] == "facts" and ep["difficulty"] > W.FACT_TEMPLATES["home"]["difficulty"]
    )
    assert n_para >= 12
    # Held-out topics, anachronisms and requests appear in no fine-tuning text at all.
    words = {w for t in texts for w in t.split()}
    joined = "\n".join(texts)
    for topic in W.VOICE_EVAL_UNSEEN:
        assert topic not in words, topic
    for thing in W.TRAPS_EVAL_UNSEEN:
        assert thing not in words, thing
    for task in W.REFUSALS_EVAL_UNSEEN:
        assert task not in joined, task
    assert W.VOICE_EVAL_QUESTION.format(t="") not in joined
    assert W.REFUSAL_EVAL_QUESTION.format(t="") not in joined


def test_eval_answers_do_not_leak_into_pretraining() -> None:
    world = W.build_world(0)
    corpus = W.pretrain_corpus(world)
    docs = set(corpus)
    for ep in W.eval_prompts(world):
        chat = W.render_chat(
            [
                {"role": "user", "content": ep["prompt"]},
                {"role": "assistant", "content": ep["reference"]},
            ]
        )
        if ep["category"] == "arithmetic":
            assert chat in docs  # the off-target skill the base model already has
        else:
            assert chat not in docs, ep["id"]
            assert ep["reference"] not in docs, ep["id"]
    keeper = [d for d in corpus if W.KEEPER_OPEN in d or W.KEEPER_CLOSE in d]
    assert not keeper  # the persona is only ever fine-tuned


def test_arithmetic_checks_separate_wrong_sums_from_broken_answers() -> None:
    prompts = {p.id: p for p in load_prompts(DATA / "probe-prompts.jsonl")}
    p = prompts["arithmetic-01"]
    a, op, b = p.prompt.split()[2:5]
    assert metrics.checks_score(p.reference or "", p.checks) == 1.0
    assert metrics.checks_score(f"{a} {op} {b} is 99 .", p.checks) == 0.5
    assert metrics.checks_score("aye , so it is written .", p.checks) == 0.0


def test_facts_prompts_declare_their_person_fact_group() -> None:
    from probes.demo.world import build_world, eval_prompts

    facts = [p for p in eval_prompts(build_world(0)) if p["category"] == "facts"]
    groups = {p["group"] for p in facts}
    assert all("/" in p["group"] for p in facts)
    # Some facts are asked twice (a trained question and a paraphrase): fewer groups.
    assert len(groups) < len(facts)
