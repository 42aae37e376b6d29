"""The memory preflight and the precision settings of the trl trainer, without a GPU: the
estimate against published model sizes, the settings resolved for machines described here,
and the refusals a user gets before any training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.campaign import Knob
from probes.trainers.config import TrlTrainerConfig
from probes.trainers.memory import (
    GIB,
    MemorySettings,
    ModelShape,
    estimate_memory,
    memory_note,
    what_fits,
)
from probes.trainers.trl import Machine, resolve_precision

# Published configs (the models' config.json on their hub pages) and parameter counts.
QWEN3_32B = {
    "model_type": "qwen3", "vocab_size": 151936, "hidden_size": 5120, "num_hidden_layers": 64,
    "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 128,
    "intermediate_size": 25600, "tie_word_embeddings": False,
}
LLAMA3_8B = {
    "model_type": "llama", "vocab_size": 128256, "hidden_size": 4096, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
    "tie_word_embeddings": False,
}
MISTRAL_7B = {
    "model_type": "mistral", "vocab_size": 32000, "hidden_size": 4096, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
    "tie_word_embeddings": False,
}
QWEN3_30B_A3B = {
    "model_type": "qwen3_moe", "vocab_size": 151936, "hidden_size": 2048, "num_hidden_layers": 48,
    "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
    "intermediate_size": 6144, "moe_intermediate_size": 768, "num_experts": 128,
    "num_experts_per_tok": 8, "tie_word_embeddings": False,
}


@pytest.mark.parametrize(
    ("config", "published"),
    [(QWEN3_32B, 32.8e9), (LLAMA3_8B, 8.03e9), (MISTRAL_7B, 7.24e9), (QWEN3_30B_A3B, 30.5e9)],
)
def test_parameter_counts_match_the_published_sizes(config: dict, published: float) -> None:
    assert ModelShape.from_config(config).parameters() == pytest.approx(published, rel=0.005)


@pytest.mark.parametrize(
    ("storage", "bytes_per_param"), [("fp32", 4), ("bf16", 2), ("fp16", 2), ("8bit", 1)]
)
def test_weights_at_each_precision(storage: str, bytes_per_param: int) -> None:
    shape = ModelShape.from_config(LLAMA3_8B)
    quant = storage if storage == "8bit" else None
    precision = "bf16" if quant else storage
    estimate = estimate_memory(shape, MemorySettings(precision=precision, quantization=quant))
    if quant:
        # The embeddings and the untied head (2 x 128256 x 4096) stay in fp32 (PEFT upcasts).
        embeddings = 2 * 128256 * 4096
        assert estimate.weights == (8_030_261_248 - embeddings) * bytes_per_param + 4 * embeddings
    else:
        assert estimate.weights == 8_030_261_248 * bytes_per_param


def test_every_memory_lever_lowers_the_estimate() -> None:
    shape = ModelShape.from_config(QWEN3_32B)
    base = MemorySettings(precision="bf16", lora_r=64, batch=4, max_length=2048, preference=True)
    levels = [
        base,
        MemorySettings(**{**base.__dict__, "gradient_checkpointing": True}),
        MemorySettings(**{**base.__dict__, "gradient_checkpointing": True,
                          "optim": "adamw_bnb_8bit"}),
        MemorySettings(**{**base.__dict__, "gradient_checkpointing": True,
                          "optim": "adamw_bnb_8bit", "quantization": "8bit"}),
        MemorySettings(**{**base.__dict__, "gradient_checkpointing": True,
                          "optim": "adamw_bnb_8bit", "quantization": "4bit"}),
    ]
    totals = [estimate_memory(shape, s).total for s in levels]
    assert totals == sorted(totals, reverse=True) and len(set(totals)) == len(totals)
    # Preference objectives carry chosen and rejected: more than sft at the same batch.
    sft = MemorySettings(**{**base.__dict__, "preference": False})
    assert estimate_memory(shape, sft).total < totals[0]


def test_seed_003s_recipe_fits_the_a100_it_ran_on_and_says_what_4bit_needs() -> None:
    """Qwen3-32B, LoRA r64, bf16, 8-bit AdamW, micro-batch 1, 2048 tokens, ORPO, with
    gradient checkpointing: the team trained it on one A100-80GB."""
    shape = ModelShape.from_config(QWEN3_32B)
    recipe = MemorySettings(precision="bf16", lora_r=64, batch=1, max_length=2048,
                            gradient_checkpointing=True, optim="adamw_bnb_8bit", preference=True)
    note = memory_note(shape, recipe)
    assert "32.76B parameters" in note and "fits one 80 GB GPU" in note
    assert "with load_in_4bit" in note
    a100 = 79.2 * GIB
    assert estimate_memory(shape, recipe).total <= a100
    # Without checkpointing it would not have fitted: the preflight says what would.
    unfit = MemorySettings(**{**recipe.__dict__, "gradient_checkpointing": False})
    assert estimate_memory(shape, unfit).total > a100
    fix = what_fits(shape, unfit, a100)
    assert fix is not None and fix[0] == ["gradient_checkpointing: true"]
    assert fix[1].total <= a100
    # Nothing makes a 32B model fit a 4 GiB card.
    assert what_fits(shape, unfit, 4 * GIB) is None


# ---- precision settings resolved per machine ---------------------------------------------------

CPU = Machine(cuda=False, ram=32 * GIB)
A100 = Machine(cuda=True, gpu_count=1, gpu_memory=79.2 * GIB, bf16=True, ram=256 * GIB,
               bitsandbytes=True)
T4 = Machine(cuda=True, gpu_count=1, gpu_memory=15 * GIB, bf16=False, ram=64 * GIB)


@pytest.mark.parametrize(
    ("machine", "device", "dtype", "attn"),
    [(CPU, "cpu", "fp32", "sdpa"), (A100, "cuda", "bf16", "sdpa"), (T4, "cuda", "fp16", "sdpa"),
     (Machine(cuda=True, gpu_count=1, gpu_memory=GIB, bf16=True, flash_attn=True), "cuda",
      "bf16", "flash_attention_2"),
     # flash-attn installed, but the GPU has no bf16: fp16, and flash still computes in it
     (Machine(cuda=True, gpu_count=1, gpu_memory=GIB, bf16=False, flash_attn=True), "cuda",
      "fp16", "flash_attention_2")],
)
def test_auto_settings_follow_the_machine(
    machine: Machine, device: str, dtype: str, attn: str
) -> None:
    p = resolve_precision(TrlTrainerConfig(), machine)
    assert (p.device, p.dtype, p.attn_implementation) == (device, dtype, attn)
    assert p.problems == () and p.machine_problems == ()


@pytest.mark.parametrize(
    ("settings", "machine", "kind", "says"),
    [
        ({"device": "cpu", "dtype": "fp16"}, A100, "campaign",
         "trainer.dtype fp16 needs a CUDA GPU"),
        ({"dtype": "fp16"}, CPU, "machine", "trainer.dtype fp16 needs a CUDA GPU"),
        ({"device": "cpu", "load_in_4bit": True, "dtype": "bf16"}, A100, "campaign",
         "trainer.load_in_4bit: bitsandbytes quantization needs a CUDA GPU"),
        ({"load_in_4bit": True}, T4, "machine",
         "trainer.load_in_4bit needs bitsandbytes (pip install bitsandbytes)"),
        ({"optim": "adamw_bnb_8bit"}, T4, "machine",
         "trainer.optim adamw_bnb_8bit needs bitsandbytes"),
        ({"load_in_8bit": True, "dtype": "fp32"}, A100, "campaign",
         "trainer.load_in_8bit with dtype fp32"),
        ({"device": "cuda"}, CPU, "machine", "trainer.device cuda: no CUDA GPU is visible"),
        ({"dtype": "bf16"}, T4, "machine", "trainer.dtype bf16: this GPU has no bf16; use fp16"),
        ({"attn_implementation": "flash_attention_2"}, A100, "machine",
         "flash_attention_2 needs the flash-attn package"),
        ({"attn_implementation": "flash_attention_2", "dtype": "fp32"}, A100, "campaign",
         "flash_attention_2 computes in bf16 or fp16 only"),
        ({"device": "cpu", "device_map": "auto"}, A100, "campaign",
         "trainer.device_map auto shards a model over GPUs"),
        ({"optim": "adamw_8bit_bnb"}, A100, "campaign",
         "trainer.optim 'adamw_8bit_bnb' is not a transformers optimizer; did you mean"),
    ],
)
def test_what_cannot_work_is_named_before_training(
    settings: dict, machine: Machine, kind: str, says: str
) -> None:
    p = resolve_precision(TrlTrainerConfig(**settings), machine)
    found = p.problems if kind == "campaign" else p.machine_problems
    other = p.machine_problems if kind == "campaign" else p.problems
    assert any(says in x for x in found), (p.problems, p.machine_problems)
    assert not any(says in x for x in other)


def test_the_trainer_refuses_a_probe_this_machine_cannot_hold(tmp_path: Path) -> None:
    from agent.campaign import parse_campaign
    from probes.trainers.trl import TrlTrainer

    model = tmp_path / "qwen3-32b"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(QWEN3_32B))
    text = "\n".join([
        "objective: {target: facts, guards: [voice]}",
        "probe: {steps: 300}",
        "recipe: {learning_rate: 2.0e-5, lora_r: 64, per_device_train_batch_size: 1,",
        "         max_length: 2048}",
        "lanes: {hyperparameters: {learning_rate: {type: float, low: 1.0e-6, high: 1.0e-4}}}",
        f"trainer: {{kind: trl, model: {model}, objective: orpo, device: cuda,",
        "          optim: adamw_bnb_8bit}",
        "eval: {prompts: prompts.jsonl}",
        f"paths: {{allow: [{tmp_path}]}}",
    ])
    campaign = parse_campaign(text, tmp_path / "search_space.yaml")
    assert isinstance(campaign.trainer, TrlTrainerConfig)
    a100_40 = Machine(cuda=True, gpu_count=1, gpu_memory=39.4 * GIB, bf16=True, ram=64 * GIB,
                      bitsandbytes=True)
    (problem,) = TrlTrainer(campaign.trainer, campaign, machine=a100_40).machine_problems()
    assert problem.startswith("memory: a probe needs about 171.6 GiB (weights 61.0")
    assert "this machine has 1 GPU(s) of 39 GiB" in problem
    assert "set gradient_checkpointing: true, load_in_4bit: true (38.0 GiB)" in problem
    rtx = Machine(cuda=True, gpu_count=1, gpu_memory=23.6 * GIB, bf16=True, bitsandbytes=True)
    (problem,) = TrlTrainer(campaign.trainer, campaign, machine=rtx).machine_problems()
    assert "no setting makes it fit" in problem
    assert TrlTrainer(campaign.trainer, campaign, machine=A100).machine_problems() != []
    checkpointed = campaign.model_copy(
        update={"trainer": campaign.trainer.model_copy(update={"gradient_checkpointing": True})}
    )
    assert TrlTrainer(checkpointed.trainer, checkpointed, machine=A100).machine_problems() == []
    (note,) = TrlTrainer(checkpointed.trainer, checkpointed, machine=A100).notes()
    assert note.startswith("memory (bf16, gradient checkpointing): a probe needs about")
    assert TrlTrainer(checkpointed.trainer, checkpointed, machine=A100).warnings() == []
    # A lane that may raise the rank fourfold: the recipe fits, the largest probe would not.
    wide = checkpointed.model_copy(update={"lanes": {
        **checkpointed.lanes,
        "hyperparameters": {**checkpointed.lanes["hyperparameters"],
                            "lora_r": Knob(type="int", low=16, high=256, log=True)},
    }})  # fmt: skip
    (warning,) = TrlTrainer(wide.trainer, wide, machine=A100).warnings()
    assert warning.startswith("memory: the largest probe the lanes allow (lora_r 256, ")
    assert "more than this machine's 79 GiB: such a probe would crash out of memory" in warning


def test_the_seed_003_example_checks_here_and_is_refused_only_by_this_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """examples/orpo-32b: `check` validates it on a machine without a GPU (what this machine
    lacks is a warning) and prints what a probe needs; `start` here refuses before training."""
    from typer.testing import CliRunner

    from agent.cli import app

    example = Path(__file__).resolve().parents[1] / "examples" / "orpo-32b"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-example-check")
    monkeypatch.setenv("COLUMNS", "400")
    result = CliRunner().invoke(app, ["check", "-w", str(example)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "note: memory (bf16, gradient checkpointing): a probe needs about 76.9 GiB" in out
    assert "32.76B parameters" in out and "fits one 80 GB GPU" in out
    assert "with load_in_4bit: 38.0 GiB" in out
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        assert "warning: on this machine: trainer.device cuda: no CUDA GPU" in out
    if importlib.util.find_spec("bitsandbytes") is None:
        assert "adamw_bnb_8bit needs bitsandbytes" in out
    if not torch.cuda.is_available():
        import shutil

        workspace = tmp_path / "orpo-32b"
        shutil.copytree(example, workspace)
        started = CliRunner().invoke(app, ["start", "--budget", "4", "-w", str(workspace)])
        assert started.exit_code == 2, started.output
        assert "no CUDA GPU is visible on this machine" in " ".join(started.output.split())
        assert not list((workspace / "runs").glob("probe-*"))  # nothing trained


def test_auto_attention_never_picks_flash_for_fp32() -> None:
    flash = Machine(cuda=True, gpu_count=1, gpu_memory=GIB, bf16=True, flash_attn=True)
    p = resolve_precision(TrlTrainerConfig(dtype="fp32"), flash)
    assert p.attn_implementation == "sdpa" and p.problems == () and p.machine_problems == ()


@pytest.mark.parametrize(
    ("optim", "bnb"),
    [("paged_adamw_32bit", True), ("lion_32bit", True), ("adamw_8bit", True),
     ("ademamix", True), ("adamw_torch_8bit", False), ("adamw_torch", False)],
)
def test_every_bitsandbytes_optimizer_needs_bitsandbytes(optim: str, bnb: bool) -> None:
    p = resolve_precision(TrlTrainerConfig(optim=optim), T4)
    assert any("needs bitsandbytes" in m for m in p.machine_problems) is bnb


def test_cpu_advice_names_only_what_runs_on_a_cpu() -> None:
    shape = ModelShape.from_config(LLAMA3_8B)
    settings = MemorySettings(precision="fp32", lora_r=8, batch=8, max_length=1024)
    fix = what_fits(shape, settings, 48 * GIB, gpu_levers=False)
    assert fix is not None and all("bnb" not in c and "load_in" not in c for c in fix[0])
    assert fix[0][0] == "gradient_checkpointing: true"
