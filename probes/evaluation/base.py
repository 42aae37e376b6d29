"""The Scorer interface, the registry of scorers by name, and how prompts get their scorers.

A scorer is one call: ``(prompt, output) -> float`` in [0, 1]. The names match
``ScorerConfig.name`` in the ``eval.scorers`` section of search_space.yaml. ``nll`` is the one
model-based scorer: the output text plays no part; the evaluator computes the prompt's
reference negative log-likelihood with the model and maps it with
:func:`probes.evaluation.metrics.nll_to_unit`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from probes.evaluation import metrics
from probes.evaluation.config import EvalConfig, ScorerConfig
from probes.spec import EvalPrompt


class Scorer(Protocol):
    """Scores one output for one prompt on [0, 1] (higher is better)."""

    def __call__(self, prompt: EvalPrompt, output: str) -> float: ...


class ScorerError(ValueError):
    """A scorer that cannot score a prompt (e.g. exact_match on a prompt without reference)."""


@dataclass(frozen=True)
class ReferenceScorer:
    """Compares the output to the prompt's reference with a metric from metrics.py."""

    name: str
    metric: Callable[[str, str], float]

    def __call__(self, prompt: EvalPrompt, output: str) -> float:
        if prompt.reference is None:
            raise ScorerError(f"prompt {prompt.id!r}: scorer {self.name!r} needs a 'reference'")
        return self.metric(output, prompt.reference)


@dataclass(frozen=True)
class ChecksScorer:
    """The fraction of the prompt's verifiable checks the output passes."""

    name: str = "checks"

    def __call__(self, prompt: EvalPrompt, output: str) -> float:
        if not prompt.checks:
            raise ScorerError(f"prompt {prompt.id!r}: scorer 'checks' needs a 'checks' list")
        return metrics.checks_score(output, prompt.checks)


MODEL_SCORERS = frozenset({"nll"})
"""Scorers computed from the model's likelihood of the reference, not from generated text."""

_REGISTRY: dict[str, Scorer] = {
    **{name: ReferenceScorer(name, fn) for name, fn in metrics.REFERENCE_SCORERS.items()},
    "checks": ChecksScorer(),
}


def register_scorer(name: str, scorer: Scorer) -> None:
    """Add (or replace) a text scorer under ``name``."""
    _REGISTRY[name] = scorer


def get_scorer(name: str) -> Scorer:
    """The text scorer registered under ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = sorted([*_REGISTRY, *MODEL_SCORERS])
        raise ScorerError(f"unknown scorer {name!r}; known: {', '.join(known)}") from None


def scorer_names() -> list[str]:
    return sorted([*_REGISTRY, *MODEL_SCORERS])


def default_scorer(prompt: EvalPrompt) -> ScorerConfig:
    """No scorer configured for the category: ``checks`` when the prompt has checks, else
    ``exact_match`` against its reference."""
    if prompt.checks:
        return ScorerConfig(name="checks")
    if prompt.reference is not None:
        return ScorerConfig(name="exact_match")
    raise ScorerError(
        f"prompt {prompt.id!r} (category {prompt.category!r}) has neither 'reference' nor "
        "'checks', and no scorer is configured for its category"
    )


def scorers_for(prompt: EvalPrompt, config: EvalConfig) -> list[ScorerConfig]:
    """The scorers that score ``prompt``: those naming its category; else those with no
    category list; else :func:`default_scorer`. Several scorers are averaged."""
    named = [s for s in config.scorers if s.categories and prompt.category in s.categories]
    if named:
        return named
    general = [s for s in config.scorers if not s.categories]
    return general or [default_scorer(prompt)]


def validate_prompts(prompts: Sequence[EvalPrompt], config: EvalConfig) -> None:
    """Fail before any generation when a prompt cannot be scored as configured."""
    for prompt in prompts:
        for sc in scorers_for(prompt, config):
            if sc.name in MODEL_SCORERS or sc.name in metrics.REFERENCE_SCORERS:
                if prompt.reference is None:
                    raise ScorerError(
                        f"prompt {prompt.id!r} (category {prompt.category!r}): scorer "
                        f"{sc.name!r} needs a 'reference'"
                    )
            elif sc.name == "checks":
                if not prompt.checks:
                    raise ScorerError(
                        f"prompt {prompt.id!r} (category {prompt.category!r}): scorer 'checks' "
                        "needs a 'checks' list"
                    )
                for check in prompt.checks:
                    try:
                        metrics.validate_check(check)
                    except metrics.CheckError as exc:
                        raise ScorerError(f"prompt {prompt.id!r}: {exc}") from None
            else:
                get_scorer(sc.name)
