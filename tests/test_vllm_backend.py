"""The vLLM backend's real code path, against a fake `vllm` module (no GPU here).

The fake records what the backend asks of vLLM: the LoRA adapter is served on the base model
(`enable_lora`, one LoRARequest per adapter, passed to every generate call) — never merged.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from probes.evaluation.config import GenerationConfig
from probes.evaluation.generate import make_backend
from tests.conftest_demo import tiny_adapter, tiny_cache, tiny_model  # noqa: F401


@dataclass
class FakeCompletion:
    text: str


@dataclass
class FakeRequestOutput:
    outputs: list[FakeCompletion]
    prompt_logprobs: list[dict[int, Any]] | None = None


@dataclass
class FakeLogprob:
    logprob: float


@dataclass
class FakeVLLM:
    """State of the fake vllm module: every LLM built and every generate call."""

    inits: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)


def install_fake_vllm(monkeypatch: pytest.MonkeyPatch, tokenizer_path: Path) -> FakeVLLM:
    state = FakeVLLM()

    class SamplingParams:
        def __init__(self, **kwargs: Any) -> None:
            self.__dict__.update(kwargs)

    class LLM:
        def __init__(self, **kwargs: Any) -> None:
            state.inits.append(kwargs)

        def get_tokenizer(self) -> Any:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(str(tokenizer_path))

        def generate(self, texts: list[str], params: Any, lora_request: Any = None) -> list[Any]:
            state.calls.append({"texts": texts, "params": params, "lora": lora_request})
            if getattr(params, "prompt_logprobs", None) is not None:
                return [
                    FakeRequestOutput(
                        outputs=[FakeCompletion("")],
                        prompt_logprobs=[None] + [{1: FakeLogprob(-0.5)}] * 40,
                    )
                    for _ in texts
                ]
            n = getattr(params, "n", 1)
            return [
                FakeRequestOutput(outputs=[FakeCompletion(f" answer {i} ") for i in range(n)])
                for _ in texts
            ]

    class LoRARequest:
        def __init__(self, name: str, lora_id: int, path: str) -> None:
            self.name, self.lora_id, self.path = name, lora_id, path

    vllm = types.ModuleType("vllm")
    vllm.LLM = LLM  # type: ignore[attr-defined]
    vllm.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = LoRARequest  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.lora", lora)
    monkeypatch.setitem(sys.modules, "vllm.lora.request", request)
    return state


def test_vllm_serves_the_adapter_on_the_base_model(
    monkeypatch: pytest.MonkeyPatch,
    tiny_model: Path,  # noqa: F811
    tiny_adapter: Path,  # noqa: F811
) -> None:
    state = install_fake_vllm(monkeypatch, tiny_model)
    settings = GenerationConfig(backend="vllm", temperature=0.7, max_new_tokens=12)
    backend = make_backend(settings, tiny_model, tiny_adapter, device="cuda")
    assert state.inits == [
        {"model": str(tiny_model), "enable_lora": True, "max_lora_rank": 64, "seed": 0}
    ]
    out = backend.generate(["where does brelu live ?", "what is 2 plus 7 ?"], repeats=3, seed=5)
    assert out == [["answer 0", "answer 1", "answer 2"]] * 2
    call = state.calls[-1]
    assert call["lora"].path == str(tiny_adapter)  # the adapter, served unmerged
    assert call["params"].n == 3 and call["params"].seed == 5
    assert call["params"].max_tokens == 12
    assert all("brelu" in t or "plus" in t for t in call["texts"])  # the chat template rendered

    # Greedy decoding asks once per prompt and repeats the answer.
    greedy = make_backend(GenerationConfig(backend="vllm"), tiny_model, tiny_adapter, device="cuda")
    assert greedy.generate(["q ?"], repeats=2, seed=0) == [["answer 0", "answer 0"]]
    assert state.calls[-1]["params"].n == 1

    nll = backend.reference_nll([("where does brelu live ?", "brelu lives in vornholm .")])
    assert nll == [pytest.approx(0.5)]
    assert state.calls[-1]["lora"].path == str(tiny_adapter)


def test_vllm_without_adapter_serves_the_base_model(
    monkeypatch: pytest.MonkeyPatch,
    tiny_model: Path,  # noqa: F811
) -> None:
    state = install_fake_vllm(monkeypatch, tiny_model)
    backend = make_backend(GenerationConfig(backend="vllm"), tiny_model, None, device="cuda")
    backend.generate(["q ?"], repeats=1, seed=0)
    assert state.inits[-1]["enable_lora"] is False
    assert state.calls[-1]["lora"] is None
