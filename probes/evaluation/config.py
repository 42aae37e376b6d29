"""Configuration of evaluation (the `eval:` section of search_space.yaml). No heavy imports."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScorerConfig(_Strict):
    """One deterministic scorer applied to a set of categories."""

    name: Literal[
        "exact_match", "token_f1", "rouge1", "rougeL", "checks", "contains_reference", "nll"
    ]
    """Which scorer."""
    categories: list[str] | None = None
    """Categories it scores; default all categories without a more specific scorer."""
    scale: float = 10.0
    """Scores in [0, 1] are multiplied by this so every category shares one scale."""


class GenerationConfig(_Strict):
    """How answers are generated for evaluation."""

    backend: Literal["hf", "vllm"] = "hf"
    """`hf` (transformers, CPU or GPU) or `vllm` (GPU, LoRA served on the base model)."""
    max_new_tokens: int = Field(default=32, ge=1)
    """Longest answer generated."""
    temperature: float = Field(default=0.0, ge=0.0)
    """0 is greedy; above 0, `eval_repeats` samples per prompt differ."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    """Nucleus sampling threshold when sampling."""
    batch_size: int = Field(default=16, ge=1)
    """Prompts per generation batch."""


class EvalConfig(_Strict):
    """What the probe is evaluated on and how it is scored."""

    prompts: str
    """The eval prompts JSONL file (`id`, `category`, `prompt`, optional `reference`,
    `difficulty`, `checks`), relative to the workspace."""
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    """Generation settings (built-in trainers only; a command trainer evaluates itself)."""
    scorers: list[ScorerConfig] = Field(default_factory=list)
    """Deterministic scorers by category (built-in trainers only)."""
    judge: dict[str, Any] | None = None
    """LLM judge settings (see probes/evaluation/judge.py); validated by the judge itself."""
    cache: bool = True
    """Reuse evaluations of an identical adapter, prompt set and settings."""
