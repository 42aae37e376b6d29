"""The trl trainer's child process: `python -m probes.trainers.trl_worker --config config.json`.

Trains one probe (LoRA SFT/DPO/ORPO via TRL) and evaluates it, honouring the command-trainer
contract (DESIGN.md §5.2): it writes into `out_dir`

- `dataset.json`: the resolved training set (hash, per-category counts, example ids in order);
- `checkpoints/`: a checkpoint every `checkpoint_every` steps (resumable);
- `adapter/`: the trained LoRA adapter;
- `train_history.jsonl`: the training log (loss curve), one entry per logging step;
- `scores.jsonl`, `metrics.json`: per-prompt scores and run metrics;
- `failure.txt`: the reason, when it fails (exit code 2: bad settings, 3: non-finite loss).

`train_probe(spec)` and `evaluate_probe(spec, adapter)` are usable on their own (tests,
benchmarks). `spec.trainer` holds the settings of `TrlTrainer.trainer_settings()`, plus
`resume_from` (a previous attempt's checkpoints folder) when the session resumes a probe.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from probes.data import (
    CurriculumError,
    ManifestError,
    MixtureError,
    TrainingSet,
    build_training_set,
    load_manifest,
)
from probes.data.manifest import Example
from probes.spec import ProbeSpec, load_prompts
from probes.textfiles import write_text_whole
from probes.trainers.trl import (
    RecipeError,
    TrainingRecipe,
    objective_kind,
    parse_recipe,
    write_failure,
)

EXIT_SETTINGS = 2
EXIT_NONFINITE = 3


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss; the run stops at once."""

    def __init__(self, value: float, step: int):
        self.value = value
        self.step = step
        super().__init__(f"loss became {value} at step {step}")


@dataclass
class TrainOutcome:
    """What `train_probe` produced."""

    adapter: Path
    global_step: int
    train_loss: float
    runtime_s: float
    resumed_from_step: int
    dataset: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    peak_memory_gib: float = math.nan
    """Measured: GPU memory allocated at the peak, or the process's peak RSS on the CPU."""
    estimated_memory_gib: float = math.nan
    """The memory preflight's estimate for this probe (probes/trainers/memory.py)."""

    def metrics(self) -> dict[str, float]:
        losses = [h["loss"] for h in self.history if isinstance(h.get("loss"), (int, float))]
        out = {
            "train_loss": self.train_loss,
            "train_runtime_s": self.runtime_s,
            "steps": float(self.global_step),
            "resumed_from_step": float(self.resumed_from_step),
            "train_examples": float(self.dataset["num_examples"]),
            "unique_examples": float(self.dataset["unique_examples"]),
            "peak_memory_gib": self.peak_memory_gib,
            "estimated_memory_gib": self.estimated_memory_gib,
        }
        if losses:
            out["final_loss"] = float(losses[-1])
        return {k: v for k, v in out.items() if math.isfinite(v)}


# ---------------------------------------------------------------- settings helpers


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _tokenizer_has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _join(prompt: str, answer: str) -> str:
    """The answer as appended to the prompt in plain (no chat template) format: one space
    between them unless either side already has whitespace there."""
    if prompt and answer and not prompt[-1].isspace() and not answer[0].isspace():
        return " " + answer
    return answer


def to_records(examples: Sequence[Example], objective: str, chat: bool) -> list[dict[str, Any]]:
    """Examples as TRL dataset rows: prompt-completion for sft (completion-only loss),
    prompt/chosen/rejected for dpo/orpo; conversational when the tokenizer has a chat
    template, plain text otherwise."""
    rows: list[dict[str, Any]] = []
    for ex in examples:
        if objective == "sft":
            if chat:
                rows.append(
                    {
                        "prompt": [{"role": r, "content": c} for r, c in ex.messages[:-1]],
                        "completion": [{"role": "assistant", "content": ex.completion}],
                    }
                )
            else:
                rows.append({"prompt": ex.prompt, "completion": _join(ex.prompt, ex.completion)})
        elif chat:
            rows.append(
                {
                    "prompt": [{"role": "user", "content": ex.prompt}],
                    "chosen": [{"role": "assistant", "content": ex.chosen}],
                    "rejected": [{"role": "assistant", "content": ex.rejected}],
                }
            )
        else:
            rows.append(
                {
                    "prompt": ex.prompt,
                    "chosen": _join(ex.prompt, ex.chosen),
                    "rejected": _join(ex.prompt, ex.rejected),
                }
            )
    return rows


def build_data(spec: ProbeSpec, recipe: TrainingRecipe) -> TrainingSet:
    """The probe's training sequence: steps × batch × accumulation examples."""
    manifest = load_manifest(Path(spec.trainer["manifest"]))
    unknown = sorted(set(recipe.data.weights) - set(manifest.names))
    if unknown:
        raise RecipeError(
            f"recipe key 'weight_{unknown[0]}': the data manifest has no source "
            f"{unknown[0]!r} (sources: {manifest.names})"
        )
    return build_training_set(
        manifest,
        recipe.data,
        kind=objective_kind(spec.trainer.get("objective", "sft")),
        seed=spec.seed,
        total=spec.steps * recipe.examples_per_step,
    )


def _write_json(path: Path, data: Any) -> None:
    write_text_whole(path, json.dumps(data, indent=1, sort_keys=True))


def _config_fields(config_cls: type) -> set[str]:
    import dataclasses

    return {f.name for f in dataclasses.fields(config_cls)}


# ---------------------------------------------------------------- training


def _trainer_classes(objective: str) -> tuple[type, type]:
    if objective == "sft":
        from trl import SFTConfig, SFTTrainer

        return SFTConfig, SFTTrainer
    if objective == "dpo":
        from trl import DPOConfig, DPOTrainer

        return DPOConfig, DPOTrainer
    if objective == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        return ORPOConfig, ORPOTrainer
    raise RecipeError(f"unknown objective {objective!r}: use sft, dpo or orpo")


def _guarded(trainer_cls: type) -> type:
    """`trainer_cls` whose every micro-step checks its loss: NaN/inf stops training at once
    (the Trainer's own NaN filter would hide it from the logged average)."""
    import torch

    class Guarded(trainer_cls):  # type: ignore[misc, valid-type]
        def training_step(self, *args: Any, **kwargs: Any) -> Any:
            loss = super().training_step(*args, **kwargs)
            if not bool(torch.isfinite(loss).all()):
                raise NonFiniteLoss(float(loss.detach().float().mean()), self.state.global_step + 1)
            return loss

    Guarded.__name__ = f"Guarded{trainer_cls.__name__}"
    return Guarded


def _skip_final_checkpoint() -> Any:
    """A callback that saves no checkpoint at the last step (the adapter is saved anyway)."""
    from transformers import TrainerCallback

    class SkipFinalCheckpoint(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if state.global_step >= state.max_steps:
                control.should_save = False
            return control

    return SkipFinalCheckpoint()


def last_checkpoint(folder: Path) -> Path | None:
    """The newest `checkpoint-N` in `folder` that holds a trainer state, or None."""
    if not folder.is_dir():
        return None
    found = []
    for p in folder.iterdir():
        if p.is_dir() and p.name.startswith("checkpoint-") and (p / "trainer_state.json").exists():
            try:
                found.append((int(p.name.split("-", 1)[1]), p))
            except ValueError:
                continue
    return max(found)[1] if found else None


def training_args(spec: ProbeSpec, recipe: TrainingRecipe, config_cls: type, device: str) -> Any:
    """The TRL config of one probe: the recipe, the probe's steps and seed, and fast settings
    (no evaluation or saving during training but checkpoints, no progress bars)."""
    settings = spec.trainer
    objective = settings.get("objective", "sft")
    every = settings.get("checkpoint_every")
    report_to = list(settings.get("report_to") or []) or ["none"]
    kwargs: dict[str, Any] = {
        "output_dir": str(spec.out_dir / "checkpoints"),
        "max_steps": spec.steps,
        "seed": spec.seed,
        "data_seed": spec.seed,
        "learning_rate": recipe.learning_rate,
        "lr_scheduler_type": recipe.lr_scheduler_type,
        "warmup_steps": recipe.warmup_ratio,  # transformers 5: a float in [0, 1) is a ratio
        "weight_decay": recipe.weight_decay,
        "per_device_train_batch_size": recipe.per_device_train_batch_size,
        "gradient_accumulation_steps": recipe.gradient_accumulation_steps,
        "max_length": recipe.max_length,
        "logging_strategy": "steps",
        "logging_steps": int(settings.get("logging_steps") or 10),
        "logging_first_step": True,
        "logging_nan_inf_filter": False,
        "eval_strategy": "no",
        "save_strategy": "steps" if every else "no",
        "save_steps": int(every) if every else 500,
        "save_total_limit": 1,
        "report_to": report_to,
        "logging_dir": str(spec.out_dir / "logs"),
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "train_sampling_strategy": "sequential",  # the curriculum decided the order
        # transformers 5's name of gradient_checkpointing; non-reentrant, as PEFT needs.
        "activation_checkpointing": bool(settings.get("gradient_checkpointing")),
        "activation_checkpointing_kwargs": {"use_reentrant": False},
        "bf16": settings.get("dtype") == "bf16",
        "fp16": settings.get("dtype") == "fp16",
        "optim": settings.get("optim") or "adamw_torch",
        "use_cpu": device == "cpu",
        "save_only_model": False,
    }
    if objective in ("dpo", "orpo"):
        kwargs["beta"] = recipe.beta
    if objective == "orpo":
        kwargs["remove_unused_columns"] = False  # what its collator needs (else it warns)
    if objective == "sft":
        kwargs["packing"] = False
        kwargs["shuffle_dataset"] = False
        kwargs["completion_only_loss"] = True
    known = _config_fields(config_cls)
    kwargs = {k: v for k, v in kwargs.items() if k in known}
    extra = {**(settings.get("extra") or {}), **recipe.passthrough}
    for key in extra:
        if key not in known:
            raise RecipeError(
                f"trl_{key}: {config_cls.__name__} has no field {key!r} "
                "(trainer.extra and trl_<field> recipe keys must be TRL config fields)"
            )
    kwargs.update(extra)
    if "activation_checkpointing" not in known:  # transformers 4
        kwargs["gradient_checkpointing"] = bool(settings.get("gradient_checkpointing"))
        kwargs["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    return config_cls(**kwargs)


PARAMS_PER_THREAD = 10_000_000


def cpu_threads(requested: int | None, model: Any) -> int:
    """Torch CPU threads: `requested`, else one per 10M parameters up to the core count.

    Tiny models gain little from a second thread and lose a lot when the cores are busy
    (measured on the demo model, 2 cores: 55 ms/step with 1 thread; 44 ms with 2 on an idle
    machine but 270 ms when another process competes), so they get one.
    """
    if requested:
        return int(requested)
    n_params = sum(p.numel() for p in model.parameters())
    return max(1, min(os.cpu_count() or 1, n_params // PARAMS_PER_THREAD))


def quiet_libraries() -> None:
    """No progress bars or info chatter in the probe's log (its tail is the crash report)."""
    import datasets
    import transformers

    warnings.filterwarnings("ignore", message=r".*deprecated and will be removed in v6.*")
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_warning()


TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def load_model_and_tokenizer(
    model_path: Path, device: str, settings: dict[str, Any] | None = None
) -> tuple[Any, Any]:
    """The base model and tokenizer as `settings` (the trainer's resolved precision) say:
    dtype, attention kernel, 4-/8-bit quantization through bitsandbytes (QLoRA), and either
    the whole model on `device` or (`device_map: auto`) sharded over the visible GPUs."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = settings or {}
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    dtype = getattr(torch, TORCH_DTYPES[settings.get("dtype") or "fp32"])
    kwargs: dict[str, Any] = {
        "dtype": dtype,
        "attn_implementation": settings.get("attn_implementation") or "sdpa",
    }
    quantization = settings.get("quantization")
    if quantization:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = (
            BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=dtype,
            )
            if quantization == "4bit"
            else BitsAndBytesConfig(load_in_8bit=True)
        )
    if settings.get("device_map") == "auto":
        kwargs["device_map"] = "auto"
    elif quantization:
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    model = AutoModelForCausalLM.from_pretrained(model_path, **kwargs)
    if "device_map" not in kwargs:
        model.to(device)  # type: ignore[arg-type]
    if quantization:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=bool(settings.get("gradient_checkpointing"))
        )
    return model, tokenizer


def estimated_memory_gib(
    model_path: Path, settings: dict[str, Any], recipe: TrainingRecipe
) -> float:
    """The memory estimate of this probe (NaN when the model's config cannot be read)."""
    from probes.trainers.memory import ModelShape, estimate_memory
    from probes.trainers.trl import memory_settings

    try:
        shape = ModelShape.from_folder(model_path)
    except (OSError, ValueError):
        return math.nan
    return estimate_memory(shape, memory_settings(recipe, settings)).gib()


def peak_memory_gib(device: str) -> float:
    """The training's peak memory: allocated on the GPU (all of them), or the process's
    resident set on the CPU (which includes the interpreter and libraries)."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        total = sum(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count()))
        return total / 1024**3
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


TEXT_LINEAR = r"(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
"""The decoder's linear layers (every family here names them alike)."""


def lora_targets(recipe: TrainingRecipe, model_config: Any) -> str | list[str]:
    """The LoRA target modules: the recipe's, except that `all-linear` on a vision-language
    checkpoint (Gemma 3's `gemma3`, which AutoModelForCausalLM loads whole) means the language
    model's linear layers only: the vision tower is not trained on text and its adapters would
    only cost memory."""
    targets = recipe.lora_target_modules
    if targets == "all-linear" and getattr(model_config, "vision_config", None) is not None:
        return rf".*language_model.*\.{TEXT_LINEAR}"
    return targets


def lora_config(recipe: TrainingRecipe, model_config: Any = None) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=recipe.lora_r,
        lora_alpha=cast(Any, recipe.lora_alpha),  # peft accepts a float alpha
        lora_dropout=recipe.lora_dropout,
        target_modules=lora_targets(recipe, model_config),
        bias="none",
        task_type="CAUSAL_LM",
    )


def train_probe(spec: ProbeSpec, *, callbacks: Sequence[Any] = ()) -> TrainOutcome:
    """Train the probe's LoRA adapter into `spec.out_dir/adapter` and return what happened.

    Raises RecipeError/ManifestError/MixtureError/CurriculumError for bad settings and
    NonFiniteLoss when the loss becomes NaN or infinite.
    """
    started = time.monotonic()
    settings = spec.trainer
    objective = settings.get("objective", "sft")
    manifest = load_manifest(Path(settings["manifest"]))
    recipe = parse_recipe(spec.params, sources=manifest.names)
    out = spec.out_dir
    out.mkdir(parents=True, exist_ok=True)
    training_set = build_data(spec, recipe)
    record = training_set.record()
    _write_json(out / "dataset.json", record)

    import torch

    quiet_libraries()
    from datasets import Dataset
    from transformers import set_seed

    set_seed(spec.seed)
    device = resolve_device(settings.get("device", "auto"))
    config_cls, trainer_cls = _trainer_classes(objective)
    args = training_args(spec, recipe, config_cls, device)
    model, tokenizer = load_model_and_tokenizer(Path(settings["model"]), device, settings)
    torch.set_num_threads(cpu_threads(settings.get("threads"), model))
    rows = to_records(training_set.examples, objective, _tokenizer_has_chat_template(tokenizer))
    dataset = Dataset.from_list(rows)

    trainer = _guarded(trainer_cls)(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config(recipe, model.config),
        callbacks=[_skip_final_checkpoint(), *callbacks],
    )
    resume = None
    if settings.get("resume_from"):
        resume = last_checkpoint(Path(settings["resume_from"]))
    resumed_from = 0
    if resume is not None:
        state = json.loads((resume / "trainer_state.json").read_text(encoding="utf-8"))
        resumed_from = int(state.get("global_step", 0))
        print(f"resuming from {resume} (step {resumed_from})", flush=True)
    try:
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    finally:
        history = list(trainer.state.log_history)
        with (out / "train_history.jsonl").open("w", encoding="utf-8") as fh:
            for entry in history:
                fh.write(json.dumps(entry, sort_keys=True) + "\n")
    adapter = out / "adapter"
    trainer.model.save_pretrained(str(adapter))
    return TrainOutcome(
        peak_memory_gib=peak_memory_gib(device),
        estimated_memory_gib=estimated_memory_gib(Path(settings["model"]), settings, recipe),
        adapter=adapter,
        global_step=int(trainer.state.global_step),
        train_loss=float(result.training_loss),
        runtime_s=time.monotonic() - started,
        resumed_from_step=resumed_from,
        dataset=record,
        history=history,
    )


# ---------------------------------------------------------------- evaluation


def evaluate_probe(spec: ProbeSpec, adapter: Path | None) -> dict[str, float]:
    """Evaluate `adapter` on the base model over the probe's eval prompts; write scores.jsonl
    and return the evaluation metrics."""
    from probes.evaluation.config import EvalConfig
    from probes.evaluation.run import evaluate_adapter

    settings = spec.trainer
    prompts = load_prompts(spec.eval_prompts)
    cache = settings.get("eval_cache_dir")
    started = time.monotonic()
    scores, metrics = evaluate_adapter(
        base_model=Path(settings["model"]),
        adapter=adapter,
        prompts=prompts,
        eval_config=EvalConfig.model_validate(settings["eval"]),
        repeats=spec.eval_repeats,
        seed=spec.seed,
        critical_below=settings.get("critical_below"),
        higher_is_better=bool(settings.get("higher_is_better", True)),
        device=resolve_device(settings.get("device", "auto")),
        cache_dir=Path(cache) if cache else None,
        outputs_path=spec.out_dir / "outputs.jsonl",
    )
    lines = "".join(json.dumps(s.to_dict(), sort_keys=True) + "\n" for s in scores)
    write_text_whole(spec.out_dir / "scores.jsonl", lines)
    return {"eval_runtime_s": time.monotonic() - started, **dict(metrics)}


# ---------------------------------------------------------------- entry point


def run(spec: ProbeSpec) -> int:
    """Train, evaluate, write metrics.json; the exit code of the worker."""
    try:
        outcome = train_probe(spec)
    except (RecipeError, ManifestError, MixtureError, CurriculumError) as exc:
        write_failure(spec.out_dir, str(exc))
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_SETTINGS
    except NonFiniteLoss as exc:
        write_failure(spec.out_dir, str(exc))
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_NONFINITE
    except Exception as exc:
        write_failure(spec.out_dir, f"training failed: {type(exc).__name__}: {exc}")
        raise
    print(
        f"trained {outcome.global_step} steps in {outcome.runtime_s:.1f}s "
        f"(loss {outcome.train_loss:.4f}, dataset {outcome.dataset['hash'][:12]})",
        flush=True,
    )
    metrics = outcome.metrics()
    try:
        metrics.update(evaluate_probe(spec, outcome.adapter))
    except Exception as exc:
        write_failure(spec.out_dir, f"evaluation failed: {type(exc).__name__}: {exc}")
        raise
    _write_json(
        spec.out_dir / "metrics.json",
        {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)},
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="the probe's config.json")
    args = parser.parse_args(argv)
    spec = ProbeSpec.from_config(json.loads(args.config.read_text(encoding="utf-8")))
    try:
        return run(spec)
    except Exception:
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
