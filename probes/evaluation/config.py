"""Configuration of evaluation (the `eval:` section of search_space.yaml). No heavy imports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from probes.llm import removed_setting

if TYPE_CHECKING:
    from probes.evaluation.judge import JudgeConfig


class _Strict(BaseModel):
    # Every number is finite: NaN or infinity would silently switch a check off (a timeout of
    # .inf, critical_below .nan) or write invalid JSON into a probe's config.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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
    """LLM judge settings (`JudgeConfig` in probes/evaluation/judge.py, validated here): the
    judge scores `judge.categories` (default: every category no scorer names) instead of the
    deterministic scorers (built-in trainers only)."""
    cache: bool = True
    """Reuse evaluations of an identical adapter, prompt set and settings."""

    @field_validator("judge")
    @classmethod
    def _valid_judge(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        from probes.evaluation.judge import JudgeConfig

        try:
            JudgeConfig.model_validate(value)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                where = ".".join(str(part) for part in err["loc"])
                msg = removed_setting(dict(err)) or err["msg"]
                problems.append(f"{where}: {msg}" if where else msg)
            raise ValueError("; ".join(problems)) from None
        return value

    @model_validator(mode="after")
    def _judge_and_scorers_agree(self) -> EvalConfig:
        judge = self.judge_config()
        if judge is None:
            return self
        if judge.categories is None:
            general = [s.name for s in self.scorers if not s.categories]
            if general:
                raise ValueError(
                    f"eval.judge has no 'categories' and scorer {general[0]!r} has none either: "
                    "say which categories the judge scores (eval.judge.categories) or which "
                    "the scorer scores"
                )
            return self
        if not judge.categories:
            raise ValueError("eval.judge.categories is empty: list the categories it scores")
        for scorer in self.scorers:
            both = sorted(set(scorer.categories or ()) & set(judge.categories))
            if both:
                raise ValueError(
                    f"category {both[0]!r} is scored both by eval.judge and by scorer "
                    f"{scorer.name!r}: a category has one kind of scoring"
                )
        return self

    def judge_config(self) -> JudgeConfig | None:
        """The validated judge settings, or None when no judge is configured."""
        if self.judge is None:
            return None
        from probes.evaluation.judge import JudgeConfig

        return JudgeConfig.model_validate(self.judge)

    def judged(self, category: str) -> bool:
        """Whether the LLM judge (rather than a deterministic scorer) scores `category`."""
        judge = self.judge_config()
        if judge is None:
            return False
        if judge.categories is not None:
            return category in judge.categories
        return not any(s.categories and category in s.categories for s in self.scorers)
