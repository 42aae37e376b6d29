"""The trl trainer on the families our users fine-tune, each a tiny random model built here
from its config (no download): Llama, Qwen3, Mistral, Gemma 3 (text-only, and the
vision-language checkpoint AutoModelForCausalLM loads whole) and a mixture of experts
(Qwen3-MoE). Per family: the LoRA targets resolve (and the memory estimate counts the same
trainable parameters PEFT creates), SFT/DPO/ORPO train a few steps, and the adapter loads back
onto the unmerged base and generates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.test_trl_trainer import build_tiny_tokenizer, make_spec, write_lab_data

pytestmark = pytest.mark.slow

COMMON: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
    "pad_token_id": 0,
    "bos_token_id": 2,
    "eos_token_id": 3,
}


def family_config(family: str, vocab: int) -> Any:
    import transformers as t

    common = {**COMMON, "vocab_size": vocab}
    if family == "llama":
        return t.LlamaConfig(**common)
    if family == "qwen3":
        return t.Qwen3Config(**common, head_dim=8)
    if family == "mistral":
        return t.MistralConfig(**common, sliding_window=16)
    if family == "gemma3-text":
        # Sliding-window layers narrower than the training length exercise the windowed mask.
        return t.Gemma3TextConfig(
            **common,
            head_dim=8,
            sliding_window=8,
            query_pre_attn_scalar=8,
            sliding_window_pattern=2,
        )
    if family == "gemma3-vl":
        return t.Gemma3Config(
            text_config={**common, "head_dim": 8, "sliding_window": 8},
            vision_config={
                "hidden_size": 16,
                "intermediate_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "image_size": 32,
                "patch_size": 8,
            },
            mm_tokens_per_image=4,
            pad_token_id=0,
            bos_token_id=2,
            eos_token_id=3,
        )
    if family == "qwen3-moe":
        return t.Qwen3MoeConfig(
            **common, head_dim=8, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16
        )
    raise ValueError(family)


FAMILIES = ["llama", "qwen3", "mistral", "gemma3-text", "gemma3-vl", "qwen3-moe"]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import torch
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("zoo")
    prompts = root / "prompts.jsonl"
    prompts.write_text(
        json.dumps({"id": "f1", "category": "facts", "prompt": "what is the colour of zorb ?",
                    "reference": "it is blue"}) + "\n"
        + json.dumps({"id": "v1", "category": "voice", "prompt": "who likes tea ?",
                      "reference": "blip says hello"}) + "\n"
    )
    out: dict[str, Path] = {"manifest": write_lab_data(root / "data"), "prompts": prompts}
    for family in FAMILIES:
        folder = root / family
        vocab = build_tiny_tokenizer(folder, chat=True)
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(family_config(family, vocab)).save_pretrained(folder)
        out[family] = folder
    return out


def lab_for(zoo: dict[str, Path], family: str) -> dict[str, Path]:
    return {"chat": zoo[family], "manifest": zoo["manifest"], "prompts": zoo["prompts"]}


@pytest.mark.parametrize("family", FAMILIES)
def test_sft_trains_loads_back_and_generates(
    zoo: dict[str, Path], tmp_path: Path, family: str
) -> None:
    from safetensors.torch import load_file

    from probes.trainers.memory import ModelShape, lora_parameters
    from probes.trainers.trl_worker import evaluate_probe, train_probe

    spec = make_spec(
        lab_for(zoo, family),
        tmp_path,
        steps=2,
        params={"per_device_train_batch_size": 2},
        eval={"prompts": str(zoo["prompts"])},
    )
    outcome = train_probe(spec)
    assert outcome.global_step == 2
    weights = load_file(str(outcome.adapter / "adapter_model.safetensors"))
    assert weights and any(float(v.abs().max()) > 0 for k, v in weights.items() if "lora_B" in k)
    # Gemma 3's vision tower is never adapted; the language model's layers all are.
    assert not any("vision" in k for k in weights), [k for k in weights if "vision" in k][:3]
    adapted = {k.split(".lora_")[0].split(".")[-1] for k in weights}
    assert {"q_proj", "k_proj", "v_proj", "o_proj"} <= adapted
    # The memory estimate counts the LoRA parameters PEFT really made.
    config = json.loads((zoo[family] / "config.json").read_text())
    assert sum(v.numel() for v in weights.values()) == lora_parameters(
        ModelShape.from_config(config), 4, "all-linear"
    )
    metrics = evaluate_probe(spec, outcome.adapter)
    scores = [json.loads(x) for x in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert {s["prompt_id"] for s in scores} == {"f1", "v1"}
    assert metrics["eval_runtime_s"] > 0
    outputs = [json.loads(x) for x in (tmp_path / "outputs.jsonl").read_text().splitlines()]
    assert outputs and all(isinstance(o.get("output"), str) for o in outputs)


@pytest.mark.parametrize("objective", ["dpo", "orpo"])
@pytest.mark.parametrize("family", ["qwen3", "gemma3-text", "qwen3-moe"])
def test_preference_objectives_train_on_each_family(
    zoo: dict[str, Path], tmp_path: Path, family: str, objective: str
) -> None:
    from probes.trainers.trl_worker import train_probe

    spec = make_spec(
        lab_for(zoo, family),
        tmp_path,
        objective=objective,
        steps=2,
        params={"per_device_train_batch_size": 2, "beta": 0.1},
    )
    outcome = train_probe(spec)
    assert outcome.global_step == 2 and outcome.train_loss == outcome.train_loss  # not NaN


def test_bf16_and_gradient_checkpointing_train_on_the_cpu(
    zoo: dict[str, Path], tmp_path: Path
) -> None:
    """The GPU settings that also run on a CPU: bf16 weights and compute, activation
    checkpointing, and the recorded peak beside the estimate."""
    import torch

    from probes.trainers.trl_worker import load_model_and_tokenizer, train_probe

    settings = {"dtype": "bf16", "gradient_checkpointing": True, "attn_implementation": "sdpa"}
    model, _ = load_model_and_tokenizer(zoo["qwen3"], "cpu", settings)
    assert next(model.parameters()).dtype == torch.bfloat16
    spec = make_spec(lab_for(zoo, "qwen3"), tmp_path, steps=2, **settings)
    outcome = train_probe(spec)
    assert outcome.global_step == 2
    metrics = outcome.metrics()
    assert metrics["peak_memory_gib"] > 0 and metrics["estimated_memory_gib"] > 0
    from trl import SFTConfig

    from probes.trainers.trl import parse_recipe
    from probes.trainers.trl_worker import training_args

    args = training_args(spec, parse_recipe(spec.params), SFTConfig, "cpu")
    assert args.bf16 and not args.fp16 and args.activation_checkpointing
