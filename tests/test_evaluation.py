"""evaluate_adapter on a tiny model: scores, adapters unmerged, the cache, backends."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from probes.evaluation import base
from probes.evaluation.config import EvalConfig, GenerationConfig, ScorerConfig
from probes.evaluation.run import evaluate_adapter, is_critical, score_output
from probes.spec import EvalPrompt, load_prompts
from tests.conftest_demo import *  # noqa: F403  (the demo fixtures)

DATA = Path(__file__).resolve().parents[1] / "data"
PROMPTS = load_prompts(DATA / "probe-prompts.jsonl")
FEW = [p for p in PROMPTS if p.id.endswith(("-01", "-02"))]
CONFIG = EvalConfig(
    prompts="data/probe-prompts.jsonl", generation=GenerationConfig(max_new_tokens=8)
)


def run(model: Path, adapter: Path | None = None, **kw: object) -> tuple[list, dict]:
    args: dict = {
        "base_model": model,
        "adapter": adapter,
        "prompts": FEW,
        "eval_config": CONFIG,
        "repeats": 1,
        "seed": 0,
        "critical_below": 2.0,
    }
    args.update(kw)
    return evaluate_adapter(**args)


def test_one_score_per_prompt_and_repeat_on_the_common_scale(
    tiny_model: Path, tiny_adapter: Path, tmp_path: Path
) -> None:
    scores, metrics = run(tiny_model, tiny_adapter, repeats=2, outputs_path=tmp_path / "o.jsonl")
    assert [(s.prompt_id, s.repeat) for s in scores] == [(p.id, r) for p in FEW for r in range(2)]
    assert all(0.0 <= s.score <= 10.0 for s in scores)
    assert all(s.critical == (s.score < 2.0) for s in scores)
    assert {s.category for s in scores} == {p.category for p in FEW}
    assert metrics["eval_cache_hit"] == 0.0
    assert metrics["eval_samples"] == 2 * len(FEW)
    assert "eval_score_facts" in metrics and metrics["eval_runtime_s"] > 0
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 2 * len(FEW)
    # Greedy decoding: the repeats are the same answer.
    by_prompt: dict[str, set[float]] = {}
    for s in scores:
        by_prompt.setdefault(s.prompt_id, set()).add(s.score)
    assert all(len(v) == 1 for v in by_prompt.values())


def test_adapter_is_served_unmerged(
    tiny_model: Path, tiny_adapter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from peft import PeftModel
    from peft.tuners.lora import LoraModel

    def no_merge(*args: object, **kwargs: object) -> None:
        raise AssertionError("evaluation must never merge the adapter")

    for name in ("merge_and_unload", "merge_adapter", "_unload_and_optionally_merge"):
        monkeypatch.setattr(LoraModel, name, no_merge, raising=False)
    from probes.evaluation.generate import HFBackend

    backend = HFBackend(tiny_model, tiny_adapter, CONFIG.generation)
    assert isinstance(backend.model, PeftModel)
    assert not any(getattr(m, "merged", False) for m in backend.model.modules())
    plain = HFBackend(tiny_model, None, CONFIG.generation)
    prompts = [p.prompt for p in FEW]
    # The adapter (random, non-zero) changes what the model says or how likely references are.
    pairs = [(p.prompt, p.reference or "") for p in FEW]
    assert backend.reference_nll(pairs) != plain.reference_nll(pairs)
    assert len(backend.generate(prompts, repeats=1, seed=0)) == len(prompts)


def test_batched_generation_equals_one_at_a_time(tiny_model: Path) -> None:
    from probes.evaluation.generate import HFBackend

    prompts = [p.prompt for p in PROMPTS[::5]]  # different lengths: left padding matters
    batched = HFBackend(tiny_model, None, GenerationConfig(max_new_tokens=6, batch_size=16))
    single = HFBackend(tiny_model, None, GenerationConfig(max_new_tokens=6, batch_size=1))
    assert batched.generate(prompts, repeats=1, seed=0) == single.generate(
        prompts, repeats=1, seed=0
    )
    pairs = [(p.prompt, p.reference or "") for p in PROMPTS[::5]]
    for a, b in zip(batched.reference_nll(pairs), single.reference_nll(pairs), strict=True):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-4)


def test_sampling_is_seeded(tiny_model: Path) -> None:
    from probes.evaluation.generate import HFBackend

    backend = HFBackend(tiny_model, None, GenerationConfig(max_new_tokens=6, temperature=1.5))
    prompts = [p.prompt for p in FEW]
    first = backend.generate(prompts, repeats=3, seed=7)
    assert first == backend.generate(prompts, repeats=3, seed=7)
    assert all(len(a) == 3 for a in first)
    assert any(len(set(a)) > 1 for a in first)  # samples differ
    assert first != backend.generate(prompts, repeats=3, seed=8)


def test_cache_hits_on_identical_evaluation_and_misses_on_any_change(
    tiny_model: Path, tiny_adapter: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first, m1 = run(tiny_model, tiny_adapter, cache_dir=cache)
    again, m2 = run(tiny_model, tiny_adapter, cache_dir=cache)
    assert m1["eval_cache_hit"] == 0.0 and m2["eval_cache_hit"] == 1.0
    assert [s.score for s in again] == [s.score for s in first]
    # Critical flags follow the caller's threshold, not the stored one.
    relaxed, _ = run(tiny_model, tiny_adapter, cache_dir=cache, critical_below=None)
    assert not any(s.critical for s in relaxed)

    changed_adapter = tmp_path / "adapter2"
    shutil.copytree(tiny_adapter, changed_adapter)
    with (changed_adapter / "adapter_config.json").open("a") as fh:
        fh.write("\n")
    variants: list[dict] = [
        {"seed": 1},
        {"repeats": 2},
        {
            "eval_config": CONFIG.model_copy(
                update={"generation": GenerationConfig(max_new_tokens=9)}
            )
        },
        {"eval_config": CONFIG.model_copy(update={"scorers": [ScorerConfig(name="token_f1")]})},
        {"prompts": FEW[:-1]},
        {"adapter": changed_adapter},
        {"adapter": None},
    ]
    for change in variants:
        kw = {"adapter": tiny_adapter, **change}
        _, m = run(tiny_model, cache_dir=cache, **kw)
        assert m["eval_cache_hit"] == 0.0, change


def test_cache_off_in_config_never_hits(tiny_model: Path, tmp_path: Path) -> None:
    config = CONFIG.model_copy(update={"cache": False})
    run(tiny_model, None, eval_config=config, cache_dir=tmp_path)
    _, m = run(tiny_model, None, eval_config=config, cache_dir=tmp_path)
    assert m["eval_cache_hit"] == 0.0


def test_scorers_by_category_and_nll(tiny_model: Path) -> None:
    config = CONFIG.model_copy(
        update={
            "scorers": [
                ScorerConfig(name="nll", categories=["facts"]),
                ScorerConfig(name="rougeL", categories=["voice"]),
                ScorerConfig(name="checks", categories=["voice"], scale=10.0),
            ]
        }
    )
    scores, metrics = run(tiny_model, None, eval_config=config)
    by_id = {s.prompt_id: s for s in scores}
    fact = by_id["facts-01"]
    assert fact.components is not None and set(fact.components) == {"nll"}
    assert metrics["eval_nll_facts"] > 0
    nll_01 = -math.log(fact.score / 10.0)
    assert nll_01 > 0
    voice = by_id["voice-01"]
    assert voice.components is not None and set(voice.components) == {"rougeL", "checks"}
    assert voice.score == pytest.approx(sum(voice.components.values()) / 2)
    # Unconfigured categories fall back to checks (they have checks) or exact match.
    assert by_id["traps-01"].components is not None
    assert set(by_id["traps-01"].components) == {"checks"}


def test_default_scorers() -> None:
    ref = EvalPrompt(id="a", category="c", prompt="p", reference="x y")
    chk = EvalPrompt(id="b", category="c", prompt="p", checks=({"type": "contains", "value": "x"},))
    assert base.default_scorer(ref).name == "exact_match"
    assert base.default_scorer(chk).name == "checks"
    with pytest.raises(base.ScorerError, match="neither"):
        base.default_scorer(EvalPrompt(id="c", category="c", prompt="p"))
    score, comps = score_output(ref, "X y.", [base.default_scorer(ref)])
    assert score == 10.0 and comps == {"exact_match": 10.0}


def test_unscorable_prompt_fails_before_generation(tmp_path: Path) -> None:
    prompts = [EvalPrompt(id="a", category="c", prompt="p", checks=({"type": "x"},))]
    with pytest.raises(base.ScorerError, match="unknown check type"):
        evaluate_adapter(
            base_model=tmp_path,
            adapter=None,
            prompts=prompts,
            eval_config=CONFIG,
            repeats=1,
            seed=0,
            critical_below=None,
        )
    config = CONFIG.model_copy(update={"scorers": [ScorerConfig(name="exact_match")]})
    prompts = [
        EvalPrompt(id="b", category="c", prompt="p", checks=({"type": "contains", "value": "x"},))
    ]
    with pytest.raises(base.ScorerError, match="needs a 'reference'"):
        evaluate_adapter(
            base_model=tmp_path,
            adapter=None,
            prompts=prompts,
            eval_config=config,
            repeats=1,
            seed=0,
            critical_below=None,
        )


def test_missing_folders_never_reach_the_hub(tmp_path: Path, tiny_model: Path) -> None:
    from probes.evaluation.generate import HFBackend

    with pytest.raises(FileNotFoundError, match="not a model folder"):
        HFBackend(tmp_path / "nope", None, CONFIG.generation)
    with pytest.raises(FileNotFoundError, match="not a LoRA adapter"):
        HFBackend(tiny_model, tmp_path / "missing-adapter", CONFIG.generation)


def test_vllm_backend_is_selected_lazily_with_a_clear_error(tiny_model: Path) -> None:
    import importlib.util

    from probes.evaluation.generate import BackendUnavailable, VLLMBackend, make_backend

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    with pytest.raises(BackendUnavailable, match="pip install 'autoresearch\\[vllm\\]'"):
        make_backend(GenerationConfig(backend="vllm"), tiny_model, None)
    with pytest.raises(BackendUnavailable):
        VLLMBackend(tiny_model, None, GenerationConfig(backend="vllm"))


@pytest.mark.parametrize(
    ("score", "threshold", "higher", "expected"),
    [
        (1.0, 2.0, True, True),
        (2.0, 2.0, True, False),
        (3.0, 2.0, False, True),
        (1.0, None, True, False),
    ],
)
def test_is_critical(score: float, threshold: float | None, higher: bool, expected: bool) -> None:
    assert is_critical(score, threshold, higher) is expected
