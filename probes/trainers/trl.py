"""The built-in TRL/PEFT trainer: LoRA SFT, DPO or ORPO on a local model, one child process
per probe.

`TrlTrainer` is a command trainer whose command is this project's own worker
(`python -m probes.trainers.trl_worker --config {config}`), run through `run_probe_process`:
a crash, a NaN loss or an out-of-memory in training is that probe's `crash`, never the loop's
death. The worker reads what it needs from `spec.trainer` (`TrlTrainer.trainer_settings()`)
and the recipe from `spec.params` (`parse_recipe` below lists the keys it understands).

Importing this module never imports torch, transformers, peft or trl.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib.util
import json
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probes.data import (
    CURRICULA,
    MIX_BY,
    STRATEGIES,
    CurriculumError,
    DataSettings,
    ManifestError,
    MixtureError,
    build_training_set,
    load_manifest,
)
from probes.paths import allowed_roots, outside, refusal
from probes.spec import ProbeResult, ProbeSpec
from probes.trainers.base import Trainer
from probes.trainers.command import run_probe_process
from probes.trainers.config import TrlTrainerConfig
from probes.trainers.memory import (
    GIB,
    MemoryEstimate,
    MemorySettings,
    ModelShape,
    estimate_memory,
    memory_note,
    what_fits,
)

if TYPE_CHECKING:
    from agent.campaign import Campaign

WORKER_MODULE = "probes.trainers.trl_worker"
FAILURE_FILE = "failure.txt"
"""The worker writes the reason of a failed run here; `run` reports it as the crash reason."""
PASSTHROUGH_PREFIX = "trl_"
WEIGHT_PREFIX = "weight_"

# The recipe keys of the trl trainer: name -> (type, default, help).
HYPERPARAMETERS: dict[str, tuple[str, Any, str]] = {
    "learning_rate": ("float", 2e-4, "peak learning rate"),
    "lr_scheduler_type": ("str", "linear", "a transformers scheduler: linear, cosine, constant…"),
    "warmup_ratio": ("float", 0.0, "fraction of the steps spent warming up, in [0, 1)"),
    "weight_decay": ("float", 0.0, "AdamW weight decay"),
    "per_device_train_batch_size": ("int", 8, "examples per micro-batch"),
    "gradient_accumulation_steps": ("int", 1, "micro-batches per optimizer step"),
    "max_length": ("int", 256, "longest tokenized example (prompt + answer)"),
    "beta": ("float", 0.1, "DPO/ORPO beta (ignored by sft)"),
    "lora_r": ("int", 8, "LoRA rank"),
    "lora_alpha": ("float", 16.0, "LoRA alpha"),
    "lora_dropout": ("float", 0.0, "LoRA dropout"),
    "lora_target_modules": ("modules", "all-linear", "a list of module names or 'all-linear'"),
}
DATA_KEYS: dict[str, tuple[str, Any, str]] = {
    "mixture": ("str", "natural", f"one of {list(STRATEGIES)}"),
    "mixture_by": ("str", "category", f"one of {list(MIX_BY)}"),
    "mixture_floor": ("float", 0.05, "proportional: the smallest share of any class"),
    "curriculum": ("str", "shuffle", f"one of {list(CURRICULA)}"),
    "curriculum_source": ("str?", None, "source_first: the source trained first"),
    "num_examples": ("int?", None, "examples in one pass of the mixture (default: all)"),
}
RECIPE_KEYS = {**HYPERPARAMETERS, **DATA_KEYS}


class RecipeError(ValueError):
    """A recipe the trl trainer cannot train; the message names the key."""


@dataclass(frozen=True)
class TrainingRecipe:
    """`spec.params` read by the trl trainer."""

    learning_rate: float = 2e-4
    lr_scheduler_type: str = "linear"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 256
    beta: float = 0.1
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_target_modules: str | list[str] = "all-linear"
    data: DataSettings = field(default_factory=DataSettings)
    passthrough: dict[str, Any] = field(default_factory=dict)
    """`trl_<field>` keys, without the prefix: set on the TRL config as they are."""

    @property
    def examples_per_step(self) -> int:
        return self.per_device_train_batch_size * self.gradient_accumulation_steps


def _coerce(key: str, kind: str, value: Any) -> Any:
    if kind.endswith("?"):
        if value is None:
            return None
        kind = kind[:-1]
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(f"recipe key {key!r} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise RecipeError(f"recipe key {key!r} must be finite, got {value!r}")
        return float(value)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise RecipeError(f"recipe key {key!r} must be a whole number, got {value!r}")
        return int(value)
    if kind == "str":
        if not isinstance(value, str) or not value:
            raise RecipeError(f"recipe key {key!r} must be a non-empty string, got {value!r}")
        return value
    # modules
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return list(value)
    raise RecipeError(
        f"recipe key {key!r} must be 'all-linear' or a list of module names, got {value!r}"
    )


def parse_recipe(params: dict[str, Any], *, sources: list[str] | None = None) -> TrainingRecipe:
    """Read and check a recipe. Unknown keys are errors (a typo must not silently do nothing),
    except `trl_<field>` keys, passed to the TRL config, and `weight_<source>` keys, which must
    name a manifest source when `sources` is given."""
    values: dict[str, Any] = {}
    weights: dict[str, float] = {}
    passthrough: dict[str, Any] = {}
    for key, value in params.items():
        if key in RECIPE_KEYS:
            values[key] = _coerce(key, RECIPE_KEYS[key][0], value)
        elif key.startswith(WEIGHT_PREFIX) and len(key) > len(WEIGHT_PREFIX):
            name = key[len(WEIGHT_PREFIX) :]
            if sources is not None and name not in sources:
                raise RecipeError(
                    f"recipe key {key!r}: the data manifest has no source {name!r} "
                    f"(sources: {sources})"
                )
            weight = _coerce(key, "float", value)
            if weight < 0:
                raise RecipeError(f"recipe key {key!r} must be >= 0, got {value!r}")
            weights[name] = weight
        elif key.startswith(PASSTHROUGH_PREFIX) and len(key) > len(PASSTHROUGH_PREFIX):
            passthrough[key[len(PASSTHROUGH_PREFIX) :]] = value
        else:
            close = difflib.get_close_matches(key, list(RECIPE_KEYS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RecipeError(
                f"unknown recipe key {key!r}{hint}; the trl trainer understands "
                f"{', '.join(RECIPE_KEYS)}, weight_<source> and trl_<TRL config field>"
            )
    for key in (
        "learning_rate",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "max_length",
        "lora_r",
        "lora_alpha",
    ):
        if key in values and values[key] <= 0:
            raise RecipeError(f"recipe key {key!r} must be > 0, got {values[key]!r}")
    for key in ("weight_decay", "lora_dropout", "beta"):
        if key in values and values[key] < 0:
            raise RecipeError(f"recipe key {key!r} must be >= 0, got {values[key]!r}")
    if not 0 <= values.get("warmup_ratio", 0.0) < 1:
        raise RecipeError(
            f"recipe key 'warmup_ratio' must be in [0, 1), got {values['warmup_ratio']!r}"
        )
    if values.get("lora_dropout", 0.0) >= 1:
        raise RecipeError(
            f"recipe key 'lora_dropout' must be below 1, got {values['lora_dropout']!r}"
        )
    choices = {"mixture": STRATEGIES, "mixture_by": MIX_BY, "curriculum": CURRICULA}
    for key, allowed in choices.items():
        if key in values and values[key] not in allowed:
            raise RecipeError(
                f"recipe key {key!r} must be one of {list(allowed)}, got {values[key]!r}"
            )
    if values.get("curriculum") == "source_first":
        src = values.get("curriculum_source")
        if src is None:
            raise RecipeError("curriculum source_first needs the recipe key 'curriculum_source'")
        if sources is not None and src not in sources:
            raise RecipeError(
                f"recipe key 'curriculum_source': the data manifest has no source {src!r} "
                f"(sources: {sources})"
            )
    if values.get("num_examples") is not None and values["num_examples"] <= 0:
        raise RecipeError(f"recipe key 'num_examples' must be > 0, got {values['num_examples']!r}")
    data = DataSettings(
        **{k: values.pop(k) for k in list(values) if k in DATA_KEYS},
        weights=weights,
    )
    return TrainingRecipe(**values, data=data, passthrough=passthrough)


@dataclass(frozen=True)
class Machine:
    """What this machine offers the trl trainer (`Machine.detect()`; tests build their own)."""

    cuda: bool
    gpu_count: int = 0
    gpu_memory: float = 0.0
    """Bytes of the first GPU."""
    bf16: bool = False
    """The GPU computes in bf16."""
    ram: float = 0.0
    """Bytes of system memory."""
    bitsandbytes: bool = False
    flash_attn: bool = False
    """flash-attn is installed and the GPU runs it (compute capability 8 or newer)."""

    @classmethod
    def detect(cls) -> Machine:
        import torch

        ram = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        has = {n: importlib.util.find_spec(n) is not None for n in ("bitsandbytes", "flash_attn")}
        if not torch.cuda.is_available():
            return cls(cuda=False, ram=ram, bitsandbytes=has["bitsandbytes"])
        try:  # native bf16 only: T4 and V100 report emulated bf16 as supported by default
            bf16 = bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:  # an older torch without the argument
            bf16 = bool(torch.cuda.is_bf16_supported())
        major, _minor = torch.cuda.get_device_capability(0)
        return cls(
            cuda=True,
            gpu_count=torch.cuda.device_count(),
            gpu_memory=float(torch.cuda.get_device_properties(0).total_memory),
            bf16=bf16,
            ram=ram,
            bitsandbytes=has["bitsandbytes"],
            # FlashAttention 2 runs on Ampere (compute capability 8) and newer only.
            flash_attn=has["flash_attn"] and major >= 8,
        )


_this_machine: Machine | None = None


def this_machine() -> Machine:
    """This process's machine, detected once (it imports torch)."""
    global _this_machine
    if _this_machine is None:
        _this_machine = Machine.detect()
    return _this_machine


@dataclass(frozen=True)
class Precision:
    """The trl trainer's device and memory settings, resolved for one machine."""

    device: str
    dtype: str
    attn_implementation: str
    quantization: str | None
    gradient_checkpointing: bool
    optim: str
    device_map: str
    problems: tuple[str, ...] = ()
    """Settings the campaign combines wrongly whatever the machine."""
    machine_problems: tuple[str, ...] = ()
    """Settings this machine cannot honour (no GPU, no bitsandbytes, no bf16)."""

    def settings(self) -> dict[str, Any]:
        """What the worker reads (`spec.trainer`)."""
        return {
            "device": self.device,
            "dtype": self.dtype,
            "attn_implementation": self.attn_implementation,
            "quantization": self.quantization,
            "gradient_checkpointing": self.gradient_checkpointing,
            "optim": self.optim,
            "device_map": self.device_map,
        }


MEMORY_KNOBS = ("lora_r", "per_device_train_batch_size", "max_length")
"""Recipe keys a probe's memory grows with."""

BNB_OPTIMIZERS = frozenset(
    {
        "adamw_bnb_8bit",
        "adamw_8bit",
        "ademamix",
        "ademamix_8bit",
        "lion_8bit",
        "lion_32bit",
        "rmsprop_bnb",
        "rmsprop_bnb_8bit",
        "rmsprop_bnb_32bit",
    }
)
"""The transformers optimizer names bitsandbytes implements, besides every `paged_*` one
(adamw_torch_8bit and _4bit are torchao's)."""


def known_optimizers() -> list[str]:
    """The optimizer names transformers accepts (`TrainingArguments.optim`)."""
    from transformers.training_args import OptimizerNames

    return [o.value for o in OptimizerNames]


def resolve_precision(config: TrlTrainerConfig, machine: Machine) -> Precision:
    """`auto` settings made concrete for `machine`, and what cannot work: device auto is cuda
    when a GPU is visible; dtype auto is bf16 on a GPU with bf16, fp16 on one without, fp32 on
    the CPU; attention auto is flash_attention_2 where flash-attn is installed on a GPU, else
    sdpa."""
    problems: list[str] = []
    machine_problems: list[str] = []
    device = config.device if config.device != "auto" else ("cuda" if machine.cuda else "cpu")
    # On a CPU the campaign asked for explicitly, a GPU-only setting is the campaign's error;
    # on one `auto` fell back to, it is this machine's (a GPU machine would run it).
    cpu_issue = problems if config.device == "cpu" else machine_problems
    if config.device == "cuda" and not machine.cuda:
        machine_problems.append("trainer.device cuda: no CUDA GPU is visible on this machine")
    dtype = config.dtype
    if dtype == "auto":
        dtype = ("bf16" if machine.bf16 else "fp16") if device == "cuda" else "fp32"
    quantization = "4bit" if config.load_in_4bit else "8bit" if config.load_in_8bit else None
    attn = config.attn_implementation
    if attn == "auto":
        # FlashAttention computes in bf16/fp16 only.
        flash = device == "cuda" and machine.flash_attn and dtype in ("bf16", "fp16")
        attn = "flash_attention_2" if flash else "sdpa"
    if device == "cpu":
        if dtype == "fp16":
            cpu_issue.append(
                "trainer.dtype fp16 needs a CUDA GPU (fp16 mixed precision does not train on "
                "the CPU); use bf16 or fp32"
            )
        if quantization:
            cpu_issue.append(
                f"trainer.load_in_{quantization}: bitsandbytes quantization needs a CUDA GPU"
            )
        if attn == "flash_attention_2":
            cpu_issue.append("trainer.attn_implementation flash_attention_2 needs a CUDA GPU")
        if config.device_map == "auto":
            cpu_issue.append("trainer.device_map auto shards a model over GPUs; there are none")
    elif machine.cuda:
        if config.dtype == "bf16" and not machine.bf16:
            machine_problems.append("trainer.dtype bf16: this GPU has no bf16; use fp16")
        if config.attn_implementation == "flash_attention_2" and not machine.flash_attn:
            machine_problems.append(
                "trainer.attn_implementation flash_attention_2 needs the flash-attn package "
                "(pip install flash-attn) and an Ampere or newer GPU"
            )
    if attn == "flash_attention_2" and dtype == "fp32":
        problems.append(
            "trainer.attn_implementation flash_attention_2 computes in bf16 or fp16 only; set "
            "trainer.dtype or use sdpa"
        )
    if quantization and dtype == "fp32":
        problems.append(
            f"trainer.load_in_{quantization} with dtype fp32: quantized training computes in "
            "bf16 or fp16; set trainer.dtype"
        )
    needs_bnb = [f"load_in_{quantization}"] if quantization else []
    if config.optim in BNB_OPTIMIZERS or config.optim.startswith("paged_"):
        needs_bnb.append(f"optim {config.optim}")
    if needs_bnb and not machine.bitsandbytes:
        machine_problems.append(
            f"trainer.{needs_bnb[0]} needs bitsandbytes (pip install bitsandbytes)"
        )
    names = known_optimizers()
    if config.optim not in names:
        close = difflib.get_close_matches(config.optim, names, n=1)
        problems.append(
            f"trainer.optim {config.optim!r} is not a transformers optimizer"
            + (f"; did you mean {close[0]!r}?" if close else f" (e.g. {', '.join(names[:4])})")
        )
    return Precision(
        device=device,
        dtype=dtype,
        attn_implementation=attn,
        quantization=quantization,
        gradient_checkpointing=config.gradient_checkpointing,
        optim=config.optim,
        device_map=config.device_map,
        problems=tuple(problems),
        machine_problems=tuple(machine_problems),
    )


def memory_settings(recipe: TrainingRecipe, settings: Mapping[str, Any]) -> MemorySettings:
    """What the memory estimate of one probe reads: the recipe's sizes, and the resolved
    precision settings (`Precision.settings()`, as the worker gets them, with `objective`)."""
    return MemorySettings(
        precision=settings.get("dtype") or "fp32",
        quantization=settings.get("quantization"),
        lora_r=recipe.lora_r,
        lora_targets=recipe.lora_target_modules,
        batch=recipe.per_device_train_batch_size,
        max_length=recipe.max_length,
        gradient_checkpointing=bool(settings.get("gradient_checkpointing")),
        optim=settings.get("optim") or "adamw_torch",
        preference=settings.get("objective", "sft") != "sft",
    )


def objective_kind(objective: str) -> str:
    """The source kind an objective trains on."""
    return "sft" if objective == "sft" else "preference"


def _project_root() -> Path:
    return Path(__file__).resolve().parents[2]


class TrlTrainer(Trainer):
    """LoRA SFT/DPO/ORPO through TRL, one child process per probe (see module docstring).

    Call order: `preflight()` → `prepare()` (builds the demo model on first use) →
    `trainer_settings()` (for `ProbeSpec.trainer`) → `run(spec)` per probe. `run` fills in
    `spec.trainer` from `trainer_settings()` for any key the spec does not set, so a spec built
    without them still runs.
    """

    def __init__(
        self, config: TrlTrainerConfig, campaign: Campaign, *, machine: Machine | None = None
    ):
        self.config = config
        self.campaign = campaign
        self._model_path: Path | None = None
        self._machine = machine

    @property
    def machine(self) -> Machine:
        """This machine (detected once, on first use: it imports torch)."""
        if self._machine is None:
            self._machine = this_machine()
        return self._machine

    @functools.cached_property
    def precision(self) -> Precision:
        """The settings resolved for this machine (config and machine are fixed: once)."""
        return resolve_precision(self.config, self.machine)

    def memory(
        self, *, largest: bool = False
    ) -> tuple[MemoryEstimate, ModelShape, MemorySettings] | None:
        """The estimated peak memory of a probe of the recipe (with `largest`: of the largest
        probe the lanes allow, each of lora_r, micro-batch and max_length at its highest), or
        None when the model's config.json cannot be read yet (the demo model before its first
        build)."""
        if self.config.model == "demo":
            return None
        params = dict(self.campaign.recipe)
        if largest:
            for knobs in self.campaign.lanes.values():
                for name, knob in knobs.items():
                    if name in MEMORY_KNOBS:
                        values = [v for v in (knob.choices or [knob.high]) if v is not None]
                        numbers = [v for v in values if isinstance(v, (int, float))]
                        if numbers:
                            params[name] = max([params.get(name, 0), *numbers])
        try:
            shape = ModelShape.from_folder(self.campaign.resolve(self.config.model))
            recipe = parse_recipe(params)
        except (OSError, ValueError):
            return None
        settings = memory_settings(
            recipe, {**self.precision.settings(), "objective": self.config.objective}
        )
        return estimate_memory(shape, settings), shape, settings

    def machine_problems(self) -> list[str]:
        """The precision settings this machine cannot honour, and a probe that would not fit
        its memory (with the settings that would make it fit)."""
        precision = self.precision
        problems = list(precision.machine_problems)
        found = self.memory()
        if found is None or problems:
            return problems
        estimate, shape, settings = found
        machine, capacity = self.machine, self._capacity()
        if precision.device == "cuda":
            gpus = machine.gpu_count if precision.device_map == "auto" else 1
            where = f"{gpus} GPU(s) of {machine.gpu_memory / GIB:.0f} GiB"
        else:
            where = f"{machine.ram / GIB:.0f} GiB of RAM"
        if capacity and estimate.total > capacity:
            # 8-bit AdamW and 8-/4-bit loading need a GPU: on the CPU only the rest may help.
            gpu_only = precision.device != "cuda"
            fits = what_fits(shape, settings, capacity, gpu_levers=not gpu_only)
            advice = (
                "set " + ", ".join(fits[0]) + f" ({fits[1].gib():.1f} GiB)"
                if fits
                else "no setting makes it fit: a GPU with more memory, or device_map auto "
                "over several"
            )
            problems.append(
                f"memory: a probe needs about {estimate.gib():.1f} GiB ({estimate.breakdown()}) "
                f"and this machine has {where}; {advice}"
            )
        return problems

    def warnings(self) -> list[str]:
        """The largest probe the lanes allow not fitting this machine (the recipe does: a
        probe that large would crash out of memory, and the session would go on)."""
        capacity = self._capacity()
        recipe = self.memory()
        if self.precision.machine_problems or recipe is None or not capacity:
            return []
        if recipe[0].total > capacity:
            return []  # the recipe itself does not fit: machine_problems says so
        found = self.memory(largest=True)
        if found is None or found[0].total <= capacity:
            return []
        settings = found[2]
        return [
            f"memory: the largest probe the lanes allow (lora_r {settings.lora_r}, "
            f"per_device_train_batch_size {settings.batch}, max_length {settings.max_length}) "
            f"needs about {found[0].gib():.1f} GiB, more than this machine's "
            f"{capacity / GIB:.0f} GiB: such a probe would crash out of memory"
        ]

    def _capacity(self) -> float:
        precision, machine = self.precision, self.machine
        if precision.device == "cuda":
            gpus = machine.gpu_count if precision.device_map == "auto" else 1
            return machine.gpu_memory * gpus
        return machine.ram

    def notes(self) -> list[str]:
        found = self.memory()
        if found is None:
            return []
        _, shape, settings = found
        return [
            f"memory ({settings.precision}"
            + (f", {settings.quantization}" if settings.quantization else "")
            + (", gradient checkpointing" if settings.gradient_checkpointing else "")
            + f"): {memory_note(shape, settings)}"
        ]

    @property
    def argv(self) -> list[str]:
        return [sys.executable, "-m", WORKER_MODULE, "--config", "{config}"]

    @property
    def manifest_path(self) -> Path:
        return self.campaign.resolve(self.config.data)

    def prepare(self) -> None:
        """One-time work before the first probe: build (or find) the demo base model."""
        if self._model_path is not None:
            return
        if self.config.model == "demo":
            from probes.demo.base_model import ensure_base_model

            self._model_path = Path(ensure_base_model()).resolve()
        else:
            self._model_path = self.campaign.resolve(self.config.model).resolve()

    def model_path(self) -> Path:
        self.prepare()
        assert self._model_path is not None
        return self._model_path

    def trainer_settings(self) -> dict[str, Any]:
        """What the worker needs besides the recipe: goes into `ProbeSpec.trainer`."""
        campaign = self.campaign
        cache_dir = campaign.workspace / "runs" / "eval-cache" if campaign.eval.cache else None
        return {
            "kind": "trl",
            "model": str(self.model_path()),
            "objective": self.config.objective,
            "manifest": str(self.manifest_path.resolve()),
            "eval": campaign.eval.model_dump(mode="json"),
            "eval_cache_dir": None if cache_dir is None else str(cache_dir),
            "critical_below": campaign.objective.critical_below,
            "higher_is_better": campaign.objective.higher_is_better,
            "checkpoint_every": campaign.probe.checkpoint_every,
            "report_to": list(self.config.report_to),
            "logging_steps": self.config.logging_steps,
            "threads": self.config.threads,
            "extra": dict(self.config.extra),
            **self.precision.settings(),
        }

    def preflight(self) -> list[str]:
        """Problems that stop every probe: model folder, manifest, data kinds, recipe keys."""
        problems: list[str] = list(self.precision.problems)
        if self.config.model == "demo":
            if importlib.util.find_spec("probes.demo.base_model") is None:
                problems.append("trainer.model: 'demo' needs probes.demo.base_model (missing)")
        else:
            path = self.campaign.resolve(self.config.model)
            if not path.is_dir():
                problems.append(f"trainer.model: {path} is not a folder (a local model is needed)")
            elif not (path / "config.json").exists():
                problems.append(f"trainer.model: {path} has no config.json (not a model folder)")
        try:
            manifest = load_manifest(self.manifest_path)
        except ManifestError as exc:
            return [*problems, f"trainer.data: {exc}"]
        roots = allowed_roots(self.campaign.workspace, self.campaign.paths.allow)
        for source in manifest.sources:
            if outside(manifest.source_path(source), roots):
                key = f"trainer.data: source {source.name!r}"
                problems.append(refusal(manifest.source_path(source), self.campaign.workspace, key))
        kind = objective_kind(self.config.objective)
        if not any(s.kind == kind for s in manifest.sources):
            problems.append(
                f"trainer.objective {self.config.objective!r} trains on {kind} sources, but "
                f"{self.manifest_path} has none (sources: "
                f"{', '.join(f'{s.name} ({s.kind})' for s in manifest.sources)})"
            )
            return problems
        try:
            recipe = parse_recipe(dict(self.campaign.recipe), sources=manifest.names)
            build_training_set(manifest, recipe.data, kind=kind, seed=self.campaign.probe.seed)
        except (RecipeError, ManifestError, MixtureError, CurriculumError) as exc:
            return [*problems, f"recipe: {exc}"]
        # Every categorical value a lane may pick must be one the trainer can train.
        for lane, knobs in self.campaign.lanes.items():
            for name, knob in knobs.items():
                for choice in knob.choices or []:
                    try:
                        r = parse_recipe(
                            {**self.campaign.recipe, name: choice}, sources=manifest.names
                        )
                        build_training_set(manifest, r.data, kind=kind, seed=0)
                    except (RecipeError, ManifestError, MixtureError, CurriculumError) as exc:
                        problems.append(f"lanes.{lane}.{name}: choice {choice!r}: {exc}")
        return problems

    def run(self, spec: ProbeSpec) -> ProbeResult:
        settings = {**self.trainer_settings(), **spec.trainer}
        spec = dataclasses.replace(spec, trainer=settings)
        root = str(_project_root())
        pythonpath = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        env = {
            "PYTHONPATH": pythonpath,
            "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        # The session folds trainer.timeout and the budget into spec.timeout_s.
        timeout = spec.timeout_s if spec.timeout_s is not None else self.config.timeout
        result = run_probe_process(self.argv, spec, timeout_s=timeout, env=env)
        if result.ok:
            return result
        reason = read_failure(spec.out_dir)
        if reason and result.error and not result.error.startswith("timed out"):
            return dataclasses.replace(result, error=f"{reason} ({result.error})")
        return result


def read_failure(out_dir: Path) -> str | None:
    """The worker's own reason for a failed run, if it wrote one."""
    path = out_dir / FAILURE_FILE
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return text or None


def write_failure(out_dir: Path, reason: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / FAILURE_FILE).write_text(reason + "\n", encoding="utf-8")


def read_dataset_record(out_dir: Path) -> dict[str, Any] | None:
    """A probe's dataset.json (the resolved training set), if present."""
    try:
        data = json.loads((out_dir / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


__all__ = [
    "FAILURE_FILE",
    "RecipeError",
    "TrainingRecipe",
    "TrlTrainer",
    "objective_kind",
    "parse_recipe",
    "read_dataset_record",
]
