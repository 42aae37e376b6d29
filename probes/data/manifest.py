"""The data manifest: the training sources of a recipe, their kinds, categories and weights.

    # data/manifest.yaml
    sources:
      - {name: facts, path: sft/facts.jsonl, kind: sft, categories: [facts], weight: 1.0}
      - {name: facts_prefs, path: prefs/facts.jsonl, kind: preference, categories: [facts]}

A source is a JSONL file (its path relative to the manifest). `sft` lines hold a chat:

    {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}],
     "category": "facts", "difficulty": 0.3, "pattern": "yes", "id": "facts-001"}

`preference` lines hold a pair:

    {"prompt": "...", "chosen": "...", "rejected": "...", "category": "facts"}

`category` may be left out when the source declares exactly one; `difficulty` (a number),
`pattern` (an answer pattern, e.g. yes/no/other, for stratified mixtures) and `id` are optional
(the id defaults to `<source>:<line>`). Every error names the file, the line and the key.

Pure Python (pydantic, yaml): no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from probes.spec import jsonl_records
from probes.textfiles import read_user_text
from probes.yaml_lines import duplicate_keys, line_index, nearest_line

SourceKind = Literal["sft", "preference"]


class ManifestError(ValueError):
    """A manifest or a source file that cannot be used; the message names file, line and key."""


class _Strict(BaseModel):
    # Every number is finite: NaN or infinity would silently switch a check off (a timeout of
    # .inf, critical_below .nan) or write invalid JSON into a probe's config.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Source(_Strict):
    """One JSONL file of training examples."""

    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    """Unique name; the recipe key `weight_<name>` changes this source's weight."""
    path: str
    """The JSONL file, relative to the manifest's folder."""
    kind: SourceKind
    """`sft` (messages) or `preference` (prompt/chosen/rejected)."""
    categories: list[str] = Field(min_length=1)
    """Categories its examples belong to (each line's `category` must be one of them)."""
    weight: float = Field(default=1.0, ge=0.0)
    """Repeat factor: 2 repeats every example twice, 0.5 keeps a seeded half, 0 leaves it out."""

    @field_validator("weight")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("weight must be a finite number")
        return value


class Manifest(_Strict):
    """The validated manifest."""

    sources: list[Source] = Field(min_length=1)
    path: Path | None = Field(default=None, exclude=True)
    """Where the manifest lives; source paths resolve against its folder."""

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[Source]) -> list[Source]:
        seen: set[str] = set()
        for s in sources:
            if s.name in seen:
                raise ValueError(f"source name {s.name!r} is used twice")
            seen.add(s.name)
        return sources

    @property
    def folder(self) -> Path:
        return (self.path.parent if self.path else Path.cwd()).resolve()

    def source(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)

    def source_path(self, source: Source) -> Path:
        p = Path(source.path).expanduser()
        return p if p.is_absolute() else self.folder / p

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    def kinds(self) -> set[str]:
        return {s.kind for s in self.sources}


@dataclass(frozen=True)
class Example:
    """One training example, whatever its kind.

    sft: `prompt` is the conversation before the last assistant turn (`messages[:-1]`) and
    `completion` the last assistant turn; preference: `prompt`, `chosen`, `rejected`.
    """

    id: str
    source: str
    kind: str
    category: str
    messages: tuple[tuple[str, str], ...] = ()
    prompt: str = ""
    completion: str = ""
    chosen: str = ""
    rejected: str = ""
    difficulty: float | None = None
    pattern: str | None = None

    def content(self) -> dict[str, Any]:
        """What is trained on (for the training-set hash)."""
        if self.kind == "sft":
            return {"messages": [list(m) for m in self.messages]}
        return {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected}


def parse_manifest(text: str, path: Path) -> Manifest:
    """Validate a manifest document; errors name `path`, the line and the key path."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ManifestError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}:1: expected a mapping with a 'sources' list")
    for key, first, again in duplicate_keys(node):
        raise ManifestError(f"{path}:{again}: {key}: key given twice (first on line {first})")
    index = line_index(node)
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = nearest_line(index, loc) or 1
            key = ".".join(str(p) for p in loc)
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (expected name, path, kind, categories, weight)"
            elif err["type"] == "missing":
                msg = "required key is missing"
            lines.append(f"{path}:{line}: {key}: {msg}")
        raise ManifestError("\n".join(lines)) from None
    return manifest.model_copy(update={"path": path.resolve()})


def load_manifest(path: Path) -> Manifest:
    """Read and validate a manifest file."""
    return parse_manifest(read_user_text(path, "the data manifest", ManifestError), path)


def _text(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(f"{where}: key '{key}' is required and must be a non-empty string")
    return value


def parse_example(data: Any, source: Source, where: str, default_id: str) -> Example:
    """One JSONL record of `source` as an Example; `where` is `file:line` for errors."""
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: expected a JSON object per line")
    category = data.get("category")
    if category is None and len(source.categories) == 1:
        category = source.categories[0]
    if not isinstance(category, str) or category not in source.categories:
        raise ManifestError(
            f"{where}: key 'category' must be one of the source's categories "
            f"{source.categories}, got {category!r}"
        )
    difficulty = data.get("difficulty")
    if difficulty is not None and (
        isinstance(difficulty, bool)
        or not isinstance(difficulty, (int, float))
        or not math.isfinite(difficulty)
    ):
        raise ManifestError(
            f"{where}: key 'difficulty' must be a finite number, got {difficulty!r}"
        )
    pattern = data.get("pattern")
    if pattern is not None and not isinstance(pattern, str):
        raise ManifestError(f"{where}: key 'pattern' must be a string, got {pattern!r}")
    raw_id = data.get("id", default_id)
    if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool) or str(raw_id) == "":
        raise ManifestError(f"{where}: key 'id' must be a non-empty string, got {raw_id!r}")
    common: dict[str, Any] = {
        "id": str(raw_id),
        "source": source.name,
        "kind": source.kind,
        "category": category,
        "difficulty": None if difficulty is None else float(difficulty),
        "pattern": pattern,
    }
    if source.kind == "sft":
        messages = data.get("messages")
        if not isinstance(messages, list) or len(messages) < 2:
            raise ManifestError(
                f"{where}: key 'messages' must be a list of at least two "
                "{role, content} objects (a sft source)"
            )
        turns: list[tuple[str, str]] = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict):
                raise ManifestError(f"{where}: messages[{i}] must be an object")
            role, content = m.get("role"), m.get("content")
            if role not in {"system", "user", "assistant"}:
                raise ManifestError(
                    f"{where}: messages[{i}].role must be system, user or assistant, got {role!r}"
                )
            if not isinstance(content, str):
                raise ManifestError(f"{where}: messages[{i}].content must be a string")
            turns.append((role, content))
        if turns[-1][0] != "assistant" or not turns[-1][1].strip():
            raise ManifestError(
                f"{where}: the last message must be a non-empty assistant turn (what is trained on)"
            )
        return Example(
            **common,
            messages=tuple(turns),
            prompt="\n".join(c for _, c in turns[:-1]),
            completion=turns[-1][1],
        )
    return Example(
        **common,
        prompt=_text(data, "prompt", where),
        chosen=_text(data, "chosen", where),
        rejected=_text(data, "rejected", where),
    )


def load_source(manifest: Manifest, source: Source) -> list[Example]:
    """Every example of one source, in file order; errors name the file and line."""
    path = manifest.source_path(source)
    text = read_user_text(path, f"source {source.name!r} of {manifest.path}", ManifestError)
    examples: list[Example] = []
    seen: set[str] = set()
    for lineno, where, data in jsonl_records(text, path, ManifestError):
        example = parse_example(data, source, where, f"{source.name}:{lineno}")
        if example.id in seen:
            raise ManifestError(f"{where}: duplicate id {example.id!r} in source {source.name!r}")
        seen.add(example.id)
        examples.append(example)
    if not examples:
        raise ManifestError(f"{path}: source {source.name!r} has no examples")
    return examples


def load_examples(manifest: Manifest, kinds: set[str] | None = None) -> dict[str, list[Example]]:
    """Source name → its examples, for the sources of the given kinds (all by default)."""
    return {
        s.name: load_source(manifest, s)
        for s in manifest.sources
        if kinds is None or s.kind in kinds
    }
