"""The campaign: search_space.yaml's one schema, and its loader with file:line errors.

A campaign says what to improve (objective), how long a probe trains (probe), what the
production recipe is (recipe), what the agent may change (lanes of knobs), how a probe is
trained (trainer), how it is evaluated (eval) and who proposes changes (agent).
"""

from __future__ import annotations

import difflib
import math
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from probes.durations import parse_duration
from probes.evaluation.config import EvalConfig
from probes.llm import REMOVED_SETTINGS, removed_setting
from probes.paths import allowed_roots, outside, refusal
from probes.redaction import SECRET_ENV_VARS
from probes.textfiles import read_user_text
from probes.trainers.config import EnvName, TrainerConfig
from probes.yaml_lines import duplicate_keys, line_index, nearest_line

Seconds = Annotated[float, BeforeValidator(parse_duration)]

DEFAULT_LANES = ("hyperparameters", "data_mixture", "curriculum")


# Integers the database (64-bit) and trainers (32-bit seeds) can hold: a bigger value is a
# typo, and it must fail `check` with the key named rather than crash SQLite mid-session.
MAX_STEPS = 10**9
MAX_SEED = 2**31 - 1 - 100_000  # room for the fresh seeds a session draws after it


class _Strict(BaseModel):
    # Every number is finite: NaN or infinity would silently switch a check off (a timeout of
    # .inf, critical_below .nan) or write invalid JSON into a probe's config.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Objective(_Strict):
    """What the session tries to improve and what it may not break."""

    target: str
    """The category to improve."""
    guards: list[str] = Field(default_factory=list)
    """Categories that may not regress beyond their tolerance."""
    min_improvement: float = Field(default=0.0, ge=0.0)
    """The smallest target gain (in score units) worth keeping."""
    max_mde: float | None = Field(default=None, gt=0.0)
    """The power gate: after the baseline, a session whose smallest target effect kept with
    80% power is above this stops as `underpowered` (default 2 x min_improvement)."""
    guard_tolerance: float | dict[str, float] = 0.5
    """How far a guard may drop (score units): one number, or per guard with an optional
    `default` key, e.g. {default: 0.5, voice: 0.3}."""
    critical_below: float | None = None
    """A per-prompt score below this counts as a critical failure (lower is worse when
    higher_is_better, else above)."""
    higher_is_better: bool = True
    """Direction of every score."""

    @field_validator("guard_tolerance")
    @classmethod
    def _tolerances_non_negative(cls, value: float | dict[str, float]) -> float | dict[str, float]:
        values = value.values() if isinstance(value, dict) else [value]
        for v in values:
            if not math.isfinite(v) or v < 0:
                raise ValueError("guard tolerances must be finite and >= 0")
        return value

    @model_validator(mode="after")
    def _roles_consistent(self) -> Objective:
        if self.target in self.guards:
            raise ValueError(f"the target {self.target!r} cannot also be a guard")
        if len(set(self.guards)) != len(self.guards):
            raise ValueError("guards are listed more than once")
        if isinstance(self.guard_tolerance, dict):
            unknown = set(self.guard_tolerance) - set(self.guards) - {"default"}
            if unknown:
                raise ValueError(
                    f"guard_tolerance names {sorted(unknown)} which are not guards "
                    f"(guards: {self.guards})"
                )
        return self

    def tolerance_for(self, guard: str) -> float:
        """The tolerance of one guard."""
        if isinstance(self.guard_tolerance, dict):
            return self.guard_tolerance.get(guard, self.guard_tolerance.get("default", 0.5))
        return self.guard_tolerance

    @property
    def categories(self) -> list[str]:
        """Target first, then the guards."""
        return [self.target, *self.guards]


class ProbeSettings(_Strict):
    """How every probe (and baseline probe) is run."""

    steps: int = Field(gt=0, le=MAX_STEPS)
    """Training steps of every probe; baselines train exactly as long."""
    baseline_seeds: int = Field(default=3, ge=2, le=1000)
    """Baseline trainings with different seeds (>= 2, to measure training noise; 3 detects
    much more than 2, see docs/verdicts.md)."""
    eval_repeats: int = Field(default=1, ge=1, le=1000)
    """Evaluations per prompt per probe (sampled generation or a stochastic judge)."""
    timeout: Seconds | None = None
    """Longest a single probe may run (`90s`, `30m`, `2h`)."""
    min_prompts_per_category: int = Field(default=3, ge=1, le=1_000_000)
    """Preflight fails when a target or guard category has fewer eval prompts."""
    checkpoint_every: int | None = Field(default=None, gt=0, le=MAX_STEPS)
    """Built-in trainers save a checkpoint this often, so a resumed probe continues."""
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    """First seed; baseline seeds are seed, seed+1, ...; probes use fresh seeds after them."""


class Knob(_Strict):
    """One setting the agent may change, with its allowed values."""

    type: Literal["float", "int", "categorical"]
    """Value type."""
    low: float | None = None
    """Smallest allowed value (float, int)."""
    high: float | None = None
    """Largest allowed value (float, int)."""
    log: bool = False
    """Search on a log scale (float, int)."""
    step: float | None = None
    """Move size of the sweep policy: additive, or a factor (> 1) when log is true."""
    choices: list[Any] | None = None
    """Allowed values (categorical)."""

    @model_validator(mode="after")
    def _shape(self) -> Knob:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical knob needs a non-empty 'choices' list")
            if self.low is not None or self.high is not None:
                raise ValueError("a categorical knob takes 'choices', not 'low'/'high'")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} knob needs 'low' and 'high'")
        if not self.low < self.high:
            raise ValueError(f"'low' ({self.low}) must be below 'high' ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scale knob needs 'low' > 0")
        if self.choices is not None:
            raise ValueError(f"a {self.type} knob takes 'low'/'high', not 'choices'")
        if self.step is not None:
            if self.log and self.step <= 1:
                raise ValueError("on a log-scale knob 'step' is a factor and must be > 1")
            if not self.log and self.step <= 0:
                raise ValueError("'step' must be > 0")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("an int knob needs whole-number 'low' and 'high'")
        return self

    def contains(self, value: Any) -> bool:
        """Whether `value` is an allowed value of this knob."""
        if self.type == "categorical":
            return value in (self.choices or [])
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.type == "int" and value != int(value):
            return False
        assert self.low is not None and self.high is not None
        # A relative tolerance so a recipe's 2e-5 sits inside [2e-5, ...] despite float parsing.
        eps = 1e-9 * max(abs(self.low), abs(self.high), 1e-300)
        return self.low - eps <= value <= self.high + eps

    def describe(self) -> str:
        """The allowed values, for error messages and the agent's prompt."""
        if self.type == "categorical":
            return f"one of {self.choices}"
        scale = ", log scale" if self.log else ""
        return f"{self.type} in [{self.low:g}, {self.high:g}]{scale}"


class ModelPrice(_Strict):
    """USD per million tokens of one model (overrides the built-in price table)."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_write: float | None = Field(default=None, ge=0)
    cache_read: float | None = Field(default=None, ge=0)


class AgentSettings(_Strict):
    """`agent.settings`: tuning of the policies, every key optional. A key is read only by the
    policies `SETTING_POLICIES` names; one the selected policy (and its fallback) never reads
    is refused, naming the policies that do."""

    plateau: int = Field(default=3, ge=1, le=1000)
    """Probes of a lane without a win before it counts as stalled (optuna, claude)."""
    optuna_min_gain: float | None = Field(default=None, ge=0)
    """Smallest target gain optuna counts as a win (default: objective.min_improvement)."""
    optuna_startup_trials: int = Field(default=4, ge=0, le=1000)
    """Random trials before optuna's TPE sampler models the lane."""
    optuna_max_draws: int = Field(default=64, ge=1, le=100_000)
    """Draws optuna tries for an untried setting before it calls a lane exhausted."""
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    """Seed of optuna's sampler (default: probe.seed)."""
    max_tokens: int = Field(default=2048, ge=64, le=128_000)
    """Output tokens of one proposal call (claude)."""
    narrative_max_tokens: int = Field(default=3000, ge=64, le=128_000)
    """Output tokens of the report's narrative (claude)."""
    api_retries: int = Field(default=4, ge=0, le=10)
    """Retries of a failed API call (claude): the one retry layer (the SDK's own are off);
    waits what the server asks (`retry-after`), else backs off 2 s, 4 s, ... up to 60 s."""
    timeout: Seconds = Field(default=300.0, gt=0, le=3600)
    """Seconds one API request may take (claude); a proposal's thinking can take minutes."""
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    """Price overrides, model-id prefix -> USD per million tokens (claude)."""


SETTING_POLICIES: dict[str, tuple[str, ...]] = {
    "plateau": ("optuna", "claude"),
    "optuna_min_gain": ("optuna",),
    "optuna_startup_trials": ("optuna",),
    "optuna_max_draws": ("optuna",),
    "seed": ("optuna",),
    "max_tokens": ("claude",),
    "narrative_max_tokens": ("claude",),
    "api_retries": ("claude",),
    "timeout": ("claude",),
    "prices": ("claude",),
}
"""Which policies read each setting (the fallback of claude, and of auto, is optuna)."""

POLICIES_RUN = {
    "auto": ("claude", "optuna"),
    "claude": ("claude", "optuna"),
    "optuna": ("optuna",),
    "sweep": ("sweep",),
}
"""The policies a session of each `agent.policy` may run (the policy and its fallback)."""


class PathsConfig(_Strict):
    """Where a campaign's files may live."""

    allow: list[str] = Field(default_factory=list)
    """Folders outside the workspace that the brief, trainer.cwd, the eval prompts and the
    data (manifest and sources) may be in, e.g. `[/data/shared]`; relative ones resolve
    against the workspace. Paths are resolved, symlinks included, before the check."""


class AgentConfig(_Strict):
    """Who proposes the changes."""

    policy: Literal["auto", "claude", "optuna", "sweep"] = "auto"
    """`claude` (needs ANTHROPIC_API_KEY), `optuna` (offline), `sweep` (offline, simplest);
    `auto` is claude when the key is set, else optuna."""
    model: str = "claude-sonnet-5-5"
    """Model id for the claude policy."""
    brief: str | None = "program.md"
    """A Markdown file the user owns: context and hints for the agent."""
    max_attempts: int = Field(default=3, ge=1)
    """Invalid proposals in a row before a turn falls back to the offline policy."""
    settings: AgentSettings = Field(default_factory=AgentSettings)
    """Policy-specific settings (see `AgentSettings`)."""


class Campaign(_Strict):
    """One search_space.yaml, validated."""

    objective: Objective
    probe: ProbeSettings
    recipe: dict[str, Any]
    """Every training setting of the production recipe: the baseline's settings."""

    @field_validator("recipe")
    @classmethod
    def _recipe_numbers_finite(cls, recipe: dict[str, Any]) -> dict[str, Any]:
        def check(value: Any, where: str) -> None:
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{where} is {value}: every recipe number must be finite")
            if isinstance(value, dict):
                for k, v in value.items():
                    check(v, f"{where}.{k}")
            if isinstance(value, list):
                for i, v in enumerate(value):
                    check(v, f"{where}[{i}]")

        for key, value in recipe.items():
            check(value, key)
        return recipe

    lanes: dict[str, dict[str, Knob]]
    """Lane name -> knob name -> allowed values. Every knob must exist in `recipe`."""
    trainer: TrainerConfig
    eval: EvalConfig
    agent: AgentConfig = Field(default_factory=AgentConfig)
    protected: list[str] = Field(default_factory=list)
    """Recipe keys no proposal may change, even if a lane lists them."""
    paths: PathsConfig = Field(default_factory=PathsConfig)
    secrets: list[EnvName] = Field(default_factory=list)
    """Environment variables that hold secrets (e.g. `WANDB_API_KEY`), beside the loop's own
    `ANTHROPIC_API_KEY`: trainers do not inherit them unless `trainer.pass_env` names them,
    and their values are masked in every record, log, report and message."""

    # Where the file lives; relative paths resolve against its folder.
    path: Path | None = Field(default=None, exclude=True)

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> Campaign:
        """A campaign as a session stored it (a dump with every default), loadable after a
        setting was removed (REMOVED_SETTINGS): resume and replay of old sessions keep working,
        while a search_space.yaml that still names one is told what to do."""
        data = dict(data)
        for section, inner in (("agent", "settings"), ("eval", "judge")):
            block = data.get(section)
            if isinstance(block, dict) and isinstance(block.get(inner), dict):
                kept = {k: v for k, v in block[inner].items() if k not in REMOVED_SETTINGS}
                data[section] = {**block, inner: kept}
        return cls.model_validate(data)

    def consistency_problems(self) -> list[tuple[tuple[Any, ...], str]]:
        """Cross-section problems as (key path, message): knobs missing from the recipe,
        recipe values outside their knob's range, knobs in two lanes, empty lanes."""
        problems: list[tuple[tuple[Any, ...], str]] = []
        if not self.lanes:
            problems.append((("lanes",), "declare at least one lane with one knob"))
        seen: dict[str, str] = {}
        for lane, knobs in self.lanes.items():
            if not knobs:
                problems.append((("lanes", lane), f"lane {lane!r} declares no knobs"))
            for name, knob in knobs.items():
                loc = ("lanes", lane, name)
                if name in seen:
                    problems.append((loc, f"knob {name!r} is also in lane {seen[name]!r}"))
                seen[name] = lane
                if name not in self.recipe:
                    problems.append(
                        (
                            loc,
                            f"knob {name!r} is not in 'recipe' (every knob needs its "
                            f"baseline value there){did_you_mean(name, self.recipe)}",
                        )
                    )
                elif not knob.contains(self.recipe[name]):
                    problems.append(
                        (
                            loc,
                            f"the recipe value {self.recipe[name]!r} is outside the "
                            f"knob's range ({knob.describe()})"
                            + did_you_mean(self.recipe[name], knob.choices or ()),
                        )
                    )
        for key in self.protected:
            if key not in self.recipe:
                problems.append(
                    (("protected",), f"{key!r} is not a recipe key{did_you_mean(key, self.recipe)}")
                )
        if seen and not set(seen) - set(self.protected):
            # No policy could propose anything (and the claude policy's knob list would be an
            # empty enum, which the API refuses): say so before any training or API call.
            problems.append(
                (
                    ("protected",),
                    f"every knob of every lane is protected ({', '.join(sorted(seen))}): "
                    "nothing is left to change; unprotect a knob or add one to a lane",
                )
            )
        running = POLICIES_RUN[self.agent.policy]
        for key in sorted(self.agent.settings.model_fields_set):
            readers = SETTING_POLICIES[key]
            if not set(readers) & set(running):
                problems.append(
                    (
                        ("agent", "settings", key),
                        f"{key!r} is a setting of the {' and '.join(readers)} "
                        f"polic{'ies' if len(readers) > 1 else 'y'}; agent.policy "
                        f"{self.agent.policy} never reads it (remove it or change the policy)",
                    )
                )
        passable = (*SECRET_ENV_VARS, *self.secrets)
        for name in getattr(self.trainer, "env", {}):
            if name in passable:
                problems.append(
                    (
                        ("trainer", "env", name),
                        f"{name!r} is a secret: set it in the environment autoresearch runs in "
                        "and name it in 'trainer.pass_env', never in this file",
                    )
                )
        for i, name in enumerate(getattr(self.trainer, "pass_env", ())):
            if name not in passable:
                problems.append(
                    (
                        ("trainer", "pass_env", i),
                        f"{name!r} is not a secret variable (the trainer inherits every other "
                        f"variable anyway): name it in 'secrets:' or use one of "
                        f"{', '.join(passable)}{did_you_mean(name, passable)}",
                    )
                )
        return problems

    def path_problems(self) -> list[tuple[tuple[Any, ...], str]]:
        """Paths that leave the workspace without a `paths.allow` root, as (key path, message)."""
        roots = allowed_roots(self.workspace, self.paths.allow)
        named: list[tuple[tuple[Any, ...], str | None]] = [
            (("agent", "brief"), self.agent.brief),
            (("trainer", "cwd"), getattr(self.trainer, "cwd", None)),
            (("eval", "prompts"), self.eval.prompts),
            (("trainer", "data"), getattr(self.trainer, "data", None)),
            *(
                (("trainer", "inputs", i), value)
                for i, value in enumerate(getattr(self.trainer, "inputs", ()))
            ),
        ]
        return [
            (loc, refusal(self.resolve(value), self.workspace))
            for loc, value in named
            if value and outside(self.resolve(value), roots)
        ]

    @property
    def workspace(self) -> Path:
        """The folder holding search_space.yaml."""
        return (self.path.parent if self.path else Path.cwd()).resolve()

    def resolve(self, relative: str) -> Path:
        """A path from the file, resolved against the workspace."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.workspace / p

    def knob(self, name: str) -> tuple[str, Knob] | None:
        """(lane, knob) of a knob name, or None."""
        for lane, knobs in self.lanes.items():
            if name in knobs:
                return lane, knobs[name]
        return None


class CampaignError(ValueError):
    """search_space.yaml cannot be used. `str()` names the file, line and key path."""

    def __init__(self, path: Path, problems: list[tuple[int | None, str, str]]):
        self.path = path
        self.problems = problems
        lines = []
        for line, key, message in problems:
            where = f"{path}:{line}" if line else str(path)
            lines.append(f"{where}: {key}: {message}" if key else f"{where}: {message}")
        super().__init__("\n".join(lines))


def _clean_loc(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """Drop pydantic's discriminator/union tags that do not exist in the YAML."""
    out: list[Any] = []
    node = data
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and part in {"command", "trl", "float", "str"}:
            continue  # a union tag pydantic adds: not in the YAML, the mapping stays the same
        elif isinstance(node, dict) and part not in node and out[-1:] != [part]:
            out.append(part)  # a missing required key
            node = None
        else:
            node = None
    return tuple(out)


def _models_in(annotation: Any) -> tuple[list[type[BaseModel]], Any]:
    """The pydantic models an annotation allows, and the value type if it is a dict."""
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation], None
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin is dict:
        return [], typing.get_args(annotation)[1]
    models: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        models += _models_in(arg)[0]
    return models, None


def _keys_at(loc: tuple[Any, ...]) -> set[str]:
    """The keys the schema allows in the mapping at `loc` (empty when it cannot tell)."""
    models: list[type[BaseModel]] = [Campaign]
    value_type: Any = None
    for part in loc:
        if value_type is not None:  # `part` is a free key of a dict: its value's models
            models, value_type = _models_in(value_type)
            continue
        found: list[type[BaseModel]] = []
        for model in models:
            field = model.model_fields.get(str(part))
            if field is not None:
                sub, value_type = _models_in(field.annotation)
                found += sub
        models = found
        if not models and value_type is None:
            return set()
    return {name for model in models for name in model.model_fields}


def _closest(key: object, allowed: Iterable[object]) -> str | None:
    close = difflib.get_close_matches(str(key), sorted({str(a) for a in allowed}), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(key: object, allowed: Iterable[object]) -> str:
    """ "; did you mean 'x'?" for the closest of `allowed` to `key`, or "" when none is close."""
    close = _closest(key, allowed)
    return f"; did you mean {close!r}?" if close else ""


def _describe_error(err: dict[str, Any]) -> str:
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if err["type"] == "extra_forbidden":
        return "unknown key (check the spelling; see docs/usage.md for the keys)"
    if err["type"] == "missing":
        return "required key is missing"
    if "input" in err and err["type"] not in {"model_type", "dict_type"}:
        shown = repr(err["input"])
        if shown in msg:
            return msg  # the validator already names the value
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return f"{msg} (got {shown})"
    return msg


def parse_campaign(text: str, path: Path) -> Campaign:
    """Validate a search_space.yaml document; errors name `path`, the line and the key path."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise CampaignError(path, [(line, "", f"not valid YAML: {problem}")]) from None
    if not isinstance(data, dict):
        raise CampaignError(path, [(1, "", "expected a mapping with objective, probe, recipe, …")])
    repeated = duplicate_keys(node)
    if repeated:
        raise CampaignError(
            path,
            [
                (again, key, f"key given twice (first on line {first}); keep one")
                for key, first, again in repeated
            ],
        )
    index = line_index(node)
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        problems = []
        errors = [(_clean_loc(tuple(e["loc"]), data), dict(e)) for e in exc.errors()]
        # The schema's closest key to each unknown one. A misspelt required key then reads as
        # one problem (the unknown key, with its suggestion), not also as "missing".
        suggested = {
            loc: _closest(loc[-1], _keys_at(loc[:-1]))
            for loc, err in errors
            if err["type"] == "extra_forbidden" and loc
        }
        misspelt = {(*loc[:-1], match) for loc, match in suggested.items() if match}
        for loc, err in errors:
            if err["type"] == "missing" and loc in misspelt:
                continue
            if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                loc = (*loc, "kind")  # the discriminator key of trainer sections
            key = ".".join(str(p) for p in loc)
            message = _describe_error(err)
            removed = removed_setting(err)
            if removed:
                message = removed
            elif suggested.get(loc):
                message += f"; did you mean {suggested[loc]!r}?"
            problems.append((nearest_line(index, loc), key, message))
        raise CampaignError(path, problems) from None
    campaign = campaign.model_copy(update={"path": path.resolve()})
    cross = campaign.consistency_problems() + campaign.path_problems()
    if cross:
        raise CampaignError(
            path,
            [(nearest_line(index, loc), ".".join(map(str, loc)), msg) for loc, msg in cross],
        )
    return campaign.model_copy(update={"path": path.resolve()})


def load_campaign(path: Path) -> Campaign:
    """Read and validate search_space.yaml."""
    if not path.exists():
        raise CampaignError(
            path, [(None, "", "not found (run `autoresearch init DIR` to create a workspace)")]
        )
    try:
        text = read_user_text(path, "the campaign", ValueError)
    except ValueError as exc:
        raise CampaignError(path, [(None, "", str(exc).removeprefix(f"{path}: "))]) from None
    return parse_campaign(text, path)
