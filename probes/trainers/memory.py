"""How much memory one LoRA probe needs, estimated from the model's config.json before any
training, and what would make it fit.

Pure arithmetic (no torch): the trl trainer's preflight uses it to refuse a campaign that cannot
fit, and the worker records the estimate beside the measured peak. The estimate is an upper
sketch, not a promise; its parts:

- weights: every parameter at the load precision (bf16/fp16: 2 bytes, fp32: 4; 8-bit: 1;
  4-bit NF4: 0.5, plus its quantization constants), except that with 8-/4-bit loading the
  embeddings and an untied output head stay unquantized and are upcast to fp32 (4 bytes);
- LoRA: r x (in + out) per adapted linear layer, kept in fp32 (PEFT upcasts adapters), with
  its gradient (4 bytes) and optimizer state (AdamW: 8 bytes; 8-bit AdamW: 2);
- activations: per token and layer, about (16 h + 4 I) values at the compute precision for a
  layer of hidden size h and MLP width I (attention by sdpa/flash keeps no seq x seq scores);
  with gradient checkpointing only each layer's input (h values) is kept, plus one layer's
  full set during its recompute;
- logits: tokens x vocabulary in fp32, and their gradient;
- a fixed 1 GiB for the CUDA context and a 10% allowance for allocator fragmentation of
  everything but the weights (loaded once, in place).

Preference objectives (dpo, orpo) run chosen and rejected through the model together, so their
activations count twice the batch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

GIB = 1024**3

WEIGHT_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "8bit": 1.0, "4bit": 0.5625}
"""Bytes per base parameter (4-bit NF4 with double quantization: 4.5 bits)."""
OPTIMIZER_BYTES = {"8bit": 2.0, "default": 8.0}
"""Optimizer state per trainable parameter: AdamW's two fp32 moments, or 8-bit AdamW's."""
CONTEXT_BYTES = GIB
FRAGMENTATION = 1.10


QK_NORM_FAMILIES = {"qwen3", "qwen3_moe", "gemma3", "gemma3_text", "olmo2"}


class ModelConfigError(ValueError):
    """A config.json without the sizes a memory estimate needs."""


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a decoder-only transformer, from its config.json."""

    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    tied_embeddings: bool
    experts: int = 0
    """Routed experts per MoE layer (0: a dense MLP)."""
    expert_intermediate: int = 0
    shared_intermediate: int = 0
    """A shared expert's MLP width (Qwen-MoE style), 0 when there is none."""
    qk_norm: bool = False
    """RMS norms on queries and keys (Qwen3, Gemma 3): head_dim weights each per layer."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ModelShape:
        """The shape of `config` (a config.json as a dict); a multimodal config's
        `text_config` is read when present (Gemma 3)."""
        text = config.get("text_config")
        if isinstance(text, Mapping):
            config = {**config, **text}

        def need(*names: str) -> int:
            for name in names:
                value = config.get(name)
                if isinstance(value, int) and value > 0:
                    return value
            raise ModelConfigError(f"config.json has no {names[0]!r} (a positive integer)")

        hidden = need("hidden_size", "d_model", "n_embd")
        heads = need("num_attention_heads", "n_head")
        kv = config.get("num_key_value_heads")
        head_dim = config.get("head_dim")
        experts = int(config.get("num_experts") or config.get("num_local_experts") or 0)
        return cls(
            vocab=need("vocab_size"),
            hidden=hidden,
            layers=need("num_hidden_layers", "n_layer"),
            heads=heads,
            kv_heads=kv if isinstance(kv, int) and kv > 0 else heads,
            head_dim=head_dim if isinstance(head_dim, int) and head_dim > 0 else hidden // heads,
            intermediate=int(config.get("intermediate_size") or 4 * hidden),
            tied_embeddings=bool(config.get("tie_word_embeddings", True)),
            experts=experts,
            expert_intermediate=int(config.get("moe_intermediate_size") or 0) if experts else 0,
            shared_intermediate=int(config.get("shared_expert_intermediate_size") or 0),
            qk_norm=str(config.get("model_type", "")) in QK_NORM_FAMILIES,
        )

    @classmethod
    def from_folder(cls, folder: Path) -> ModelShape:
        """The shape of the model in `folder` (its config.json). Raises OSError when it cannot
        be read, ValueError when it is not a config with the sizes needed."""
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        if not isinstance(config, Mapping):
            raise ModelConfigError(f"{folder / 'config.json'}: not a JSON object")
        return cls.from_config(config)

    def linear_layers(self) -> dict[str, tuple[int, int, int]]:
        """Per module name: (in features, out features, how many in the model)."""
        h, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        out = {
            "q_proj": (h, q, self.layers),
            "k_proj": (h, kv, self.layers),
            "v_proj": (h, kv, self.layers),
            "o_proj": (q, h, self.layers),
        }
        if self.experts:
            width, count = self.expert_intermediate, self.layers * self.experts
            if self.shared_intermediate:
                out["shared_gate_proj"] = (h, self.shared_intermediate, self.layers)
                out["shared_up_proj"] = (h, self.shared_intermediate, self.layers)
                out["shared_down_proj"] = (self.shared_intermediate, h, self.layers)
            out["gate"] = (h, self.experts, self.layers)  # the router
            # Routed experts: fused 3-D parameters in transformers 5, not nn.Linear layers.
            out["experts.gate_proj"] = (h, width, count)
            out["experts.up_proj"] = (h, width, count)
            out["experts.down_proj"] = (width, h, count)
            return out
        width, count = self.intermediate, self.layers
        out["gate_proj"] = (h, width, count)
        out["up_proj"] = (h, width, count)
        out["down_proj"] = (width, h, count)
        return out

    def parameters(self) -> int:
        """Every parameter: embeddings (and an untied output head), the linear layers, the
        MoE routers and the norms."""
        linear = sum(i * o * n for i, o, n in self.linear_layers().values())
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        norms = self.layers * (2 * self.hidden + (2 * self.head_dim if self.qk_norm else 0))
        norms += self.hidden
        return linear + embeddings + norms


@dataclass(frozen=True)
class MemorySettings:
    """What a probe's memory depends on besides the model."""

    precision: str = "bf16"
    """The compute precision: bf16, fp16 or fp32."""
    quantization: str | None = None
    """None, "8bit" or "4bit" (bitsandbytes): the base weights' storage."""
    lora_r: int = 8
    lora_targets: str | list[str] = "all-linear"
    batch: int = 8
    max_length: int = 256
    gradient_checkpointing: bool = False
    optim: str = "adamw_torch"
    preference: bool = False
    """dpo/orpo: chosen and rejected go through the model together."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes by part, and their total with the context and fragmentation allowance."""

    weights: float
    lora: float
    activations: float
    logits: float

    @property
    def total(self) -> float:
        dynamic = self.lora + self.activations + self.logits
        return self.weights + dynamic * FRAGMENTATION + CONTEXT_BYTES

    def gib(self) -> float:
        return self.total / GIB

    def breakdown(self) -> str:
        parts = [
            ("weights", self.weights),
            ("LoRA + grads + optimizer", self.lora),
            ("activations", self.activations),
            ("logits", self.logits),
        ]
        return ", ".join(f"{name} {value / GIB:.1f}" for name, value in parts) + " GiB"


def _targets(shape: ModelShape, targets: str | list[str]) -> dict[str, tuple[int, int, int]]:
    """The layers LoRA adapts: `all-linear` is every nn.Linear but the output head (PEFT's
    rule), which leaves out fused MoE experts; a list names layers by their last name."""
    layers = shape.linear_layers()
    if targets == "all-linear":
        return {name: dims for name, dims in layers.items() if not name.startswith("experts.")}
    wanted = [targets] if isinstance(targets, str) else list(targets)
    return {name: dims for name, dims in layers.items() if name.split(".")[-1] in wanted}


def lora_parameters(shape: ModelShape, r: int, targets: str | list[str]) -> int:
    """Trainable LoRA parameters: r x (in + out) per adapted linear layer; with `all-linear`
    on a mixture of experts, PEFT (0.21) also adapts the routed experts through their fused
    parameters, rank r per expert on down_proj and on each half of the fused gate_up_proj
    (counted against PEFT's own adapters in tests/test_architectures.py)."""
    total = sum(r * (i + o) * n for i, o, n in _targets(shape, targets).values())
    if shape.experts and targets == "all-linear":
        h, width, e = shape.hidden, shape.expert_intermediate, shape.experts
        total += shape.layers * (2 * r * e * (h + 2 * width) + r * e * (width + h))
    return total


def estimate_memory(shape: ModelShape, settings: MemorySettings) -> MemoryEstimate:
    """The peak memory of one probe's training (see the module docstring for the parts)."""
    storage = settings.quantization or settings.precision
    weights = shape.parameters() * WEIGHT_BYTES[storage]
    if settings.quantization:
        # bitsandbytes quantizes the linear layers only, and PEFT's
        # prepare_model_for_kbit_training upcasts what is left (embeddings, an untied output
        # head) to fp32.
        embeddings = shape.vocab * shape.hidden * (1 if shape.tied_embeddings else 2)
        weights += embeddings * (4 - WEIGHT_BYTES[storage])
    trainable = lora_parameters(shape, settings.lora_r, settings.lora_targets)
    optimizer = OPTIMIZER_BYTES["8bit" if "8bit" in settings.optim else "default"]
    lora = trainable * (4 + 4 + optimizer)
    act_bytes = 4 if settings.precision == "fp32" else 2
    tokens = settings.batch * settings.max_length * (2 if settings.preference else 1)
    width = shape.expert_intermediate * 2 if shape.experts else shape.intermediate
    per_layer = (16 * shape.hidden + 4 * width) * act_bytes
    if settings.gradient_checkpointing:
        activations = tokens * (shape.layers * shape.hidden * act_bytes + per_layer)
    else:
        activations = tokens * shape.layers * per_layer
    logits = tokens * shape.vocab * 4 * 2
    return MemoryEstimate(weights, lora, float(activations), float(logits))


LEVERS: list[tuple[str, dict[str, Any]]] = [
    ("gradient_checkpointing: true", {"gradient_checkpointing": True}),
    ("optim: adamw_bnb_8bit", {"optim": "adamw_bnb_8bit"}),
    ("load_in_8bit: true", {"quantization": "8bit"}),
    ("load_in_4bit: true", {"quantization": "4bit"}),
]
"""Settings that cut memory, in the order a careful engineer tries them (the cheapest in
quality first); batch size is a recipe knob, named separately."""


def what_fits(
    shape: ModelShape, settings: MemorySettings, capacity: float, *, gpu_levers: bool = True
) -> tuple[list[str], MemoryEstimate] | None:
    """The first combination of LEVERS (taken in order, cumulatively) that fits `capacity`
    bytes, with its estimate; then the same with the micro-batch halved down to 1. None when
    nothing fits. Without `gpu_levers` (a CPU), only the levers that run there are tried."""
    current = settings
    changes: list[str] = []
    estimate = estimate_memory(shape, current)
    if estimate.total <= capacity:
        return changes, estimate
    for name, update in LEVERS:
        if not gpu_levers and name != "gradient_checkpointing: true":
            continue
        if all(getattr(current, k) == v for k, v in update.items()):
            continue
        if "quantization" in update and current.quantization == "4bit":
            continue
        current = replace(current, **update)
        changes = [c for c in changes if "load_in" not in c] + [name]
        estimate = estimate_memory(shape, current)
        if estimate.total <= capacity:
            return changes, estimate
    batch = current.batch
    while batch > 1:
        batch = max(1, batch // 2)
        trial = replace(current, batch=batch)
        estimate = estimate_memory(shape, trial)
        if estimate.total <= capacity:
            steps = math.ceil(settings.batch / batch)
            return [
                *changes,
                f"per_device_train_batch_size: {batch} (with gradient_accumulation_steps x "
                f"{steps} to keep the effective batch)",
            ], estimate
    return None


GPU_SIZES: list[tuple[str, float]] = [
    ("24 GB", 23.6 * GIB),
    ("40 GB", 39.4 * GIB),
    ("48 GB", 44.4 * GIB),
    ("80 GB", 79.2 * GIB),
    ("141 GB", 139.8 * GIB),
]
"""Common GPU sizes and what torch reports as their total memory (RTX 3090/4090, A100-40GB,
L40S/A6000, A100/H100-80GB, H200)."""


def smallest_gpu(total: float) -> str | None:
    """The smallest common GPU `total` bytes fit on, or None."""
    for name, capacity in GPU_SIZES:
        if total <= capacity:
            return name
    return None


def memory_note(shape: ModelShape, settings: MemorySettings) -> str:
    """One line for `check`: what a probe needs as configured, which GPU it fits, and what
    4-bit loading would need."""
    estimate = estimate_memory(shape, settings)
    fits = smallest_gpu(estimate.total)
    line = (
        f"a probe needs about {estimate.gib():.1f} GiB ({shape.parameters() / 1e9:.2f}B "
        f"parameters; {estimate.breakdown()}); "
        + (f"fits one {fits} GPU" if fits else "fits no single common GPU")
    )
    if settings.quantization != "4bit":
        four = estimate_memory(shape, replace(settings, quantization="4bit"))
        line += f"; with load_in_4bit: {four.gib():.1f} GiB"
    return line
