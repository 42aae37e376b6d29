"""The LLM client, in one place: model prices, token usage and its cost, the Anthropic client,
error descriptions without secrets, bounded retries with backoff, and extraction (with repair)
of a JSON object from a model's reply. The LLM judge (probes/evaluation/judge.py) and the claude
policy (agent/policies/claude.py) both use it. It never imports `anthropic` at module import.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from probes.redaction import redact

if TYPE_CHECKING:
    import anthropic

log = logging.getLogger(__name__)

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# Prices, usage and cost
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens."""

    input: float
    output: float
    cache_write: float
    """5-minute cache writes (1.25 x input)."""
    cache_read: float
    """Cache hits and refreshes."""


def _price(inp: float, out: float, read: float | None = None) -> ModelPrice:
    return ModelPrice(inp, out, round(inp * 1.25, 6), inp * 0.1 if read is None else read)


PRICES: dict[str, ModelPrice] = {
    # Anthropic list prices, USD per million tokens (platform.claude.com pricing page).
    # Keys are model-id prefixes; the longest matching prefix wins, then the family fallbacks
    # below. Override or extend in search_space.yaml: agent.settings.prices (claude policy) or
    # eval.judge.prices (judge), e.g. {"claude-sonnet-5-5": {"input": 2, "output": 10}}.
    "claude-fable-5-1": _price(10, 50, 0.25),
    "claude-mythos-5-1": _price(10, 50, 0.25),
    "claude-fable-5": _price(10, 50, 1.0),
    "claude-mythos-5": _price(10, 50, 1.0),
    "claude-opus-5-5": _price(4, 20, 0.2),
    "claude-opus-5": _price(5, 25),
    "claude-opus-4-8": _price(5, 25),
    "claude-opus-4-7": _price(5, 25),
    "claude-opus-4-6": _price(5, 25),
    "claude-opus-4-5": _price(5, 25),
    "claude-opus-4-1": _price(15, 75),
    "claude-opus-4-2025": _price(15, 75),
    "claude-opus-4-0": _price(15, 75),
    "claude-sonnet-5-5": _price(2, 10, 0.1),
    "claude-sonnet-5": _price(2, 10),
    "claude-sonnet-4": _price(3, 15),
    "claude-haiku-5-5": _price(0.1, 0.5),  # prompts up to 100k tokens
    "claude-haiku-4-5": _price(1, 5),
    "claude-3-5-haiku": _price(0.8, 4),
    "claude-3-haiku": _price(0.25, 1.25, 0.03),
}
FAMILY_PRICES: dict[str, ModelPrice] = {
    # When no prefix matches: the family's most common price.
    "fable": _price(10, 50),
    "mythos": _price(10, 50),
    "opus": _price(5, 25),
    "sonnet": _price(3, 15),
    "haiku": _price(1, 5),
}
BATCH_DISCOUNT = 0.5
"""Message Batches are billed at half the price of input and output tokens."""

_warned_models: set[str] = set()


def price_for(model: str, overrides: Mapping[str, Any] | None = None) -> ModelPrice | None:
    """The price of `model`: an override, the longest matching prefix, the family, or None."""
    table: dict[str, ModelPrice] = dict(PRICES)
    for key, value in (overrides or {}).items():
        if isinstance(value, ModelPrice):
            table[key] = value
        elif isinstance(value, Mapping):
            inp = float(value["input"])
            table[key] = ModelPrice(
                input=inp,
                output=float(value["output"]),
                cache_write=float(value.get("cache_write", inp * 1.25)),
                cache_read=float(value.get("cache_read", inp * 0.1)),
            )
        else:
            raise ValueError(f"price override for {key!r} must be a mapping with input/output")
    matches = [k for k in table if model == k or model.startswith(k)]
    if matches:
        return table[max(matches, key=len)]
    for family, price in FAMILY_PRICES.items():
        if family in model:
            return price
    return None


@dataclass(frozen=True)
class LLMUsage:
    """Tokens and USD of one or more API calls."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0

    def __add__(self, other: LLMUsage) -> LLMUsage:
        return LLMUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 8),
            calls=self.calls + other.calls,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def usage_of(
    response_usage: Any,
    model: str,
    *,
    batch: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> LLMUsage:
    """Tokens and cost of one response's `usage` (an SDK object or a dict)."""

    def get(name: str) -> int:
        if isinstance(response_usage, Mapping):
            value = response_usage.get(name)
        else:
            value = getattr(response_usage, name, None)
        return int(value or 0)

    inp, out = get("input_tokens"), get("output_tokens")
    read, write = get("cache_read_input_tokens"), get("cache_creation_input_tokens")
    price = price_for(model, overrides)
    if price is None:
        if model not in _warned_models:
            _warned_models.add(model)
            log.warning(
                "no price known for model %r: its cost is recorded as 0 (set a price "
                "in agent.settings.prices or eval.judge.prices)",
                model,
            )
        cost = 0.0
    else:
        cost = (
            inp * price.input
            + out * price.output
            + read * price.cache_read
            + write * price.cache_write
        ) / 1e6
        if batch:
            cost *= BATCH_DISCOUNT
    return LLMUsage(inp, out, read, write, round(cost, 8), 1)


# ---------------------------------------------------------------------------------------------
# Clients, errors, retries, redaction
# ---------------------------------------------------------------------------------------------


class MissingAPIKeyError(RuntimeError):
    """ANTHROPIC_API_KEY is not set (and no client was given)."""


def default_client(*, max_retries: int = 2, timeout: float = 120.0) -> anthropic.Anthropic:
    """A real client with the key from ANTHROPIC_API_KEY (read here and only here)."""
    key = os.environ.get("ANTHROPIC_API_KEY", "").strip()
    if not key:
        raise MissingAPIKeyError(
            "ANTHROPIC_API_KEY is not set: export it, or use an offline policy "
            "(agent.policy: optuna or sweep)"
        )
    import anthropic

    return anthropic.Anthropic(api_key=key, max_retries=max_retries, timeout=timeout)


def describe_api_error(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """A one-line, secret-free description of an API failure."""
    status = getattr(exc, "status_code", None)
    message = getattr(exc, "api_message", None) or getattr(exc, "message", None) or str(exc)
    head = type(exc).__name__ + (f" (HTTP {status})" if status else "")
    text = f"{head}: {message}" if message else head
    return redact(" ".join(str(text).split())[:300], secrets)


def is_retryable(exc: BaseException) -> bool:
    """Rate limits, overload, server errors, timeouts and connection failures."""
    import anthropic

    if isinstance(exc, (anthropic.APITimeoutError, anthropic.APIConnectionError)):
        return True
    if isinstance(exc, anthropic.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


def call_with_retries(
    fn: Callable[[], T],
    *,
    retries: int,
    sleep: Callable[[float], None] = time.sleep,
    base_delay: float = 2.0,
    max_delay: float = 60.0,
    what: str = "Anthropic API call",
    secrets: Iterable[str] = (),
) -> T:
    """Call `fn`, retrying retryable API errors up to `retries` times with exponential backoff.

    This sits on top of the SDK's own `max_retries` (which retries quickly within one call),
    for longer outages such as sustained 429s or 529 overloads.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            if attempt >= retries or not is_retryable(exc):
                raise
            delay = min(max_delay, base_delay * (2**attempt))
            retry_after = _retry_after(exc)
            if retry_after is not None:
                delay = min(max_delay, max(delay, retry_after))
            attempt += 1
            log.warning(
                "%s failed (%s); retry %d/%d in %.1fs",
                what,
                describe_api_error(exc, secrets),
                attempt,
                retries,
                delay,
            )
            sleep(delay)


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def response_text(message: Any) -> str:
    """The concatenated text blocks of a Messages API response."""
    parts = []
    for block in getattr(message, "content", None) or []:
        if getattr(block, "type", None) == "text":
            parts.append(getattr(block, "text", ""))
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# JSON extraction and repair
# ---------------------------------------------------------------------------------------------


class JSONExtractionError(ValueError):
    """No JSON object could be recovered from a reply."""


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_LITERALS = {
    "true": "true",
    "false": "false",
    "null": "null",
    "True": "true",
    "False": "false",
    "None": "null",
}


def _balanced_objects(text: str) -> list[str]:
    """Every top-level `{...}` span (string-aware); an unclosed one runs to the end."""
    spans: list[str] = []
    i = 0
    while True:
        start = text.find("{", i)
        if start < 0:
            return spans
        depth, in_str, quote, esc = 0, False, "", False
        end = None
        for j in range(start, len(text)):
            ch = text[j]
            if in_str:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == quote:
                    in_str = False
            elif ch in "\"'":
                in_str, quote = True, ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    end = j
                    break
        if end is None:
            spans.append(text[start:])
            return spans
        spans.append(text[start : end + 1])
        i = end + 1


def _tokens(text: str) -> list[tuple[str, str]]:
    """A forgiving JSON tokenizer: ('str', json) | ('lit', json) | ('word', raw) | ('p', ch)."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "{}[],:":
            out.append(("p", ch))
            i += 1
        elif ch in "\"'":
            quote, j, buf = ch, i + 1, []
            while j < n:
                c = text[j]
                if c == "\\" and j + 1 < n:
                    buf.append(text[j : j + 2])
                    j += 2
                    continue
                if c == quote:
                    break
                if c == '"' and quote == "'":
                    buf.append('\\"')
                elif c == "\n":
                    buf.append("\\n")
                else:
                    buf.append(c)
                j += 1
            raw = "".join(buf)
            if quote == "'":
                raw = raw.replace("\\'", "'")
            try:
                value = json.loads(f'"{raw}"')
            except json.JSONDecodeError:
                value = raw
            out.append(("str", json.dumps(value)))
            i = j + 1  # an unterminated string ends the text; it is closed here
        elif (m := _NUMBER.match(text, i)) is not None and m.end() > i:
            num = m.group(0)
            if num.startswith("."):
                num = "0" + num
            elif num.startswith("-."):
                num = "-0" + num[1:]
            if num.endswith("."):
                num += "0"
            out.append(("lit", num))
            i = m.end()
        elif (m := _WORD.match(text, i)) is not None:
            word = m.group(0)
            out.append(("lit", _LITERALS[word]) if word in _LITERALS else ("word", word))
            i = m.end()
        else:
            i += 1  # stray character: drop it
    return out


def repair_json(text: str) -> str:
    """Best-effort repair of a malformed JSON object: smart and single quotes, Python literals,
    unquoted keys, missing or trailing commas, missing colons, and truncation (unclosed
    strings, objects and arrays)."""
    text = (
        text.replace("\u201c", '"')
        .replace("\u201d", '"')
        .replace("\u2018", "'")
        .replace("\u2019", "'")
    )
    out: list[str] = []
    stack: list[str] = []  # '{' or '['
    prev: tuple[str, str] | None = None
    before_prev: tuple[str, str] | None = None
    expecting_key = False
    for kind, tok in _tokens(text):
        if kind == "word":
            kind, tok = "str", json.dumps(tok)
        value_start = kind in ("str", "lit") or tok in ("{", "[")
        prev_is_value_end = prev is not None and (
            prev[0] in ("str", "lit") or prev[1] in ("}", "]")
        )
        in_object = bool(stack) and stack[-1] == "{"
        if value_start and prev_is_value_end:
            prev_was_key = (
                in_object
                and prev is not None
                and prev[0] == "str"
                and before_prev is not None
                and before_prev[1] in ("{", ",")
            )
            out.append(":" if prev_was_key else ",")
            before_prev, prev = prev, ("p", out[-1])
            expecting_key = not prev_was_key and in_object
        if kind == "p" and tok in "}]":
            while out and out[-1] in (",", ":"):
                if out[-1] == ":":
                    out.append("null")
                    break
                out.pop()
            if not stack:
                continue
            expected = "}" if stack[-1] == "{" else "]"
            tok = expected
            stack.pop()
        elif tok in ("{", "["):
            stack.append(tok)
        if (
            kind == "lit"
            and in_object
            and expecting_key
            and prev is not None
            and prev[1] in ("{", ",")
        ):
            tok = json.dumps(tok)  # a bare number used as a key
        out.append(tok)
        before_prev, prev = prev, (kind, tok)
        expecting_key = kind == "p" and tok in ("{", ",") and bool(stack) and stack[-1] == "{"
    while out and out[-1] in (",", ":"):
        if out[-1] == ":":
            out.append("null")
            break
        out.pop()
    for opener in reversed(stack):
        out.append("}" if opener == "{" else "]")
    return "".join(out)


def extract_json_object(text: str) -> tuple[dict[str, Any], bool]:
    """The first JSON object in `text` and whether it needed repair.

    Tries, in order: the whole text, fenced code blocks, and brace-matched spans, each as is
    and then repaired.
    """
    candidates: list[str] = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    if "```" in text and not _FENCE.search(text):  # an unclosed fence (truncated reply)
        candidates.append(text.split("```", 1)[1].removeprefix("json").strip())
    candidates += _balanced_objects(text)
    for repaired in (False, True):
        for cand in candidates:
            if not cand:
                continue
            source = repair_json(cand) if repaired else cand
            try:
                value = json.loads(source)
            except (json.JSONDecodeError, RecursionError):
                continue
            if isinstance(value, dict):
                return value, repaired
    raise JSONExtractionError("no JSON object found in the reply")
