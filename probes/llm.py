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


# ---------------------------------------------------------------------------------------------
# What each model accepts (docs read 2026-12; sources in docs/agent.md, "Models")
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelTraits:
    """What a model accepts in a Messages API request, and how it behaves by default."""

    forced_tool_choice: bool
    """`tool_choice` `any` / `tool` accepted (the 5.5 models and Fable/Mythos 5.1 answer 400)."""
    thinks_by_default: bool
    """Adaptive thinking runs when `thinking` is omitted; its tokens count toward max_tokens."""
    effort: bool
    """`output_config.effort` accepted (low .. max)."""
    max_output_tokens: int
    """The largest `max_tokens`."""
    min_cache_tokens: int
    """The shortest prefix the prompt cache stores (a shorter one is silently not cached)."""


_MODERN = ModelTraits(True, True, True, 128_000, 512)
_NO_FORCED_CHOICE = ModelTraits(False, True, True, 128_000, 512)
MODEL_TRAITS: dict[str, ModelTraits] = {
    # Longest matching prefix wins. Forced tool choice is refused by the 5.5 generation and
    # the 5.1 Fable/Mythos; Haiku 5.5's docs do not say, so it is treated as refusing (auto
    # plus an instruction works on every model; forcing only helps where it is accepted).
    "claude-fable-5-1": _NO_FORCED_CHOICE,
    "claude-mythos-5-1": _NO_FORCED_CHOICE,
    "claude-opus-5-5": _NO_FORCED_CHOICE,
    "claude-sonnet-5-5": _NO_FORCED_CHOICE,
    "claude-haiku-5-5": _NO_FORCED_CHOICE,
    "claude-fable-5": _MODERN,
    "claude-mythos-5": _MODERN,
    "claude-opus-5": _MODERN,
    "claude-sonnet-5": ModelTraits(True, True, True, 128_000, 1024),
    "claude-opus-4-8": ModelTraits(True, False, True, 128_000, 1024),
    "claude-opus-4-7": ModelTraits(True, False, True, 128_000, 2048),
    "claude-opus-4-6": ModelTraits(True, False, True, 128_000, 4096),
    "claude-sonnet-4-6": ModelTraits(True, False, True, 128_000, 1024),
    "claude-opus-4-5": ModelTraits(True, False, False, 64_000, 4096),
    "claude-sonnet-4-5": ModelTraits(True, False, False, 64_000, 1024),
    "claude-haiku-4-5": ModelTraits(True, False, False, 64_000, 4096),
}
UNKNOWN_MODEL_TRAITS = ModelTraits(False, False, False, 64_000, 4096)
"""A model not in the table: no forced tool choice, no effort field, the smaller output cap,
and the largest cache minimum (so nothing is claimed cached that may not be)."""


THINKING_ROOM = 8192
"""Tokens added to a call's max_tokens on models that think by default: thinking counts toward
the cap, and room not used costs nothing."""


def output_room(model: str, answer_tokens: int) -> int:
    """`max_tokens` for a call whose answer needs `answer_tokens`: plus THINKING_ROOM on a
    model that thinks by default, within the model's output cap."""
    traits = traits_of(model)
    room = THINKING_ROOM if traits.thinks_by_default else 0
    return min(answer_tokens + room, traits.max_output_tokens)


def traits_of(model: str) -> ModelTraits:
    """What `model` accepts: the longest matching prefix of MODEL_TRAITS, else the cautious
    UNKNOWN_MODEL_TRAITS."""
    matches = [k for k in MODEL_TRAITS if model == k or model.startswith(k)]
    return MODEL_TRAITS[max(matches, key=len)] if matches else UNKNOWN_MODEL_TRAITS


def cacheable(prefix: str, model: str) -> bool:
    """Whether a prompt prefix surely reaches `model`'s cache minimum. The token count is
    underestimated (one per 5 characters; English prose runs about 4), so a prefix is marked
    `cache_control` only when it will be cached: a cost line never claims a cache that the
    API silently skipped."""
    return len(prefix) // 5 >= traits_of(model).min_cache_tokens


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


def default_client(*, timeout: float = 120.0) -> anthropic.Anthropic:
    """A real client with the key from ANTHROPIC_API_KEY (read here and only here).

    The SDK's own retries are off: :func:`call_with_retries` is the one retry layer (with the
    SDK's also on, one logical call could make (1 + ours) x (1 + the SDK's) HTTP attempts)."""
    key = os.environ.get("ANTHROPIC_API_KEY", "").strip()
    if not key:
        raise MissingAPIKeyError(
            "ANTHROPIC_API_KEY is not set: export it, or use an offline policy "
            "(agent.policy: optuna or sweep)"
        )
    import anthropic

    return anthropic.Anthropic(api_key=key, max_retries=0, timeout=timeout)


def single_layer(client: T) -> T:
    """`client` with the SDK's retries off (a client handed in, say by a test or a user's
    factory, may have its own `max_retries`; ours are the only layer)."""
    with_options = getattr(client, "with_options", None)
    if with_options is None or getattr(client, "max_retries", 0) == 0:
        return client
    return with_options(max_retries=0)  # type: ignore[no-any-return]


REMOVED_SETTINGS: dict[str, str] = {
    "sdk_max_retries": "no longer read: the SDK's own retries are off and api_retries is the "
    "one retry layer; delete this key",
}
"""Settings of the LLM client (agent.settings, eval.judge) that were removed, with what to do.
Stored campaigns that still hold them load (see `Campaign.from_stored`); a file gets this."""


def removed_setting(error: Mapping[str, Any]) -> str | None:
    """What to do about a pydantic error that is an unknown key which used to be a setting
    (REMOVED_SETTINGS), or None for any other error."""
    loc = error.get("loc") or ()
    if error.get("type") == "extra_forbidden" and loc:
        return REMOVED_SETTINGS.get(str(loc[-1]))
    return None


SPEND_LIMIT_CODES = frozenset(
    {
        "enforced_spend_limit_reached",
        "contract_spend_limit_reached",
        "linked_organization_spend_limit_reached",
    }
)
"""`error.details.error_code` values of 429s that no wait cures: the organisation's spend limit
is reached until someone raises it or the month turns (they come without `retry-after`)."""

MAX_TOTAL_WAIT = 1800.0
"""Seconds: the most one logical call waits in all its retries together."""

MAX_SERVER_WAIT = 900.0
"""Seconds: the longest `retry-after` we wait out. The server's wait is honoured in full up to
this; a longer one fails the call at once (the caller falls back) rather than stall a night."""


def error_code(exc: BaseException) -> str | None:
    """`error.details.error_code` of an API error (the SDK's attribute, else the body's)."""
    code = getattr(exc, "error_code", None)
    if isinstance(code, str):
        return code
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    code = details.get("error_code") if isinstance(details, dict) else None
    return code if isinstance(code, str) else None


def describe_api_error(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """A one-line, secret-free description of an API failure."""
    status = getattr(exc, "status_code", None)
    code = error_code(exc)
    message = getattr(exc, "api_message", None) or getattr(exc, "message", None) or str(exc)
    detail = ", ".join(x for x in (f"HTTP {status}" if status else "", code or "") if x)
    head = type(exc).__name__ + (f" ({detail})" if detail else "")
    if code in SPEND_LIMIT_CODES:
        message = f"{message} (spend limit reached: raise it in the Claude Console; not retried)"
    text = f"{head}: {message}" if message else head
    return redact(" ".join(str(text).split())[:300], secrets)


def is_retryable(exc: BaseException) -> bool:
    """Whether the failure is of a kind that passes: rate limits (not spend limits), overload,
    server errors, timeouts and connection failures. A kind that does not (a bad key, a bad
    request, a spend limit) recurs on every call, so callers stop calling."""
    import anthropic

    if isinstance(exc, (anthropic.APITimeoutError, anthropic.APIConnectionError)):
        return True
    if isinstance(exc, anthropic.APIStatusError):
        if error_code(exc) in SPEND_LIMIT_CODES:
            return False
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


def should_retry(exc: BaseException) -> bool:
    """Whether this one failure is retried: a spend limit never; else the server's
    `x-should-retry: true|false` when it sends one (as the SDK does); else :func:`is_retryable`."""
    if error_code(exc) in SPEND_LIMIT_CODES:
        return False
    header = _header(exc, "x-should-retry")
    if header == "true":
        return True
    if header == "false":
        return False
    return is_retryable(exc)


def server_wait(exc: BaseException) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms`, else `retry-after` in seconds or
    as an HTTP date (the SDK's order)."""
    ms = _header(exc, "retry-after-ms")
    try:
        if ms is not None:
            return max(0.0, float(ms) / 1000)
    except ValueError:
        pass
    value = _header(exc, "retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils

    when = email.utils.parsedate_tz(value)
    if when is None:
        return None
    return max(0.0, email.utils.mktime_tz(when) - time.time())


def call_with_retries(
    fn: Callable[[], T],
    *,
    retries: int,
    sleep: Callable[[float], None] = time.sleep,
    base_delay: float = 2.0,
    max_delay: float = 60.0,
    max_server_wait: float = MAX_SERVER_WAIT,
    max_total_wait: float = MAX_TOTAL_WAIT,
    what: str = "Anthropic API call",
    secrets: Iterable[str] = (),
) -> T:
    """Call `fn`; retry what :func:`should_retry` allows, up to `retries` times.

    The one retry layer (clients are made with the SDK's retries off). The wait is what the
    server asks (`retry-after-ms` / `retry-after` above 0, honoured in full up to
    `max_server_wait`; beyond that the call fails at once), else exponential backoff from
    `base_delay`, capped at `max_delay`, with up to 25% jitter so parallel probes do not retry
    in step. The waits of one call never add up to more than `max_total_wait`: the call fails
    instead (its caller falls back or records the failure).
    """
    import random

    attempt = 0
    waited = 0.0
    while True:
        try:
            return fn()
        except Exception as exc:
            if attempt >= retries or not should_retry(exc):
                raise
            asked = server_wait(exc)
            if asked is not None and asked > 0:
                delay = asked
            else:  # no wait asked, or 0 (as the SDK does): back off
                delay = min(max_delay, base_delay * (2**attempt))
                delay *= 1 - 0.25 * random.random()
            if asked is not None and asked > max_server_wait:
                too_long = f"the server asks for a {asked:.0f}s wait, over the "
                too_long += f"{max_server_wait:.0f}s we wait"
            elif waited + delay > max_total_wait:
                too_long = f"retrying would wait {delay:.0f}s more, over the "
                too_long += f"{max_total_wait:.0f}s one call may wait"
            else:
                too_long = ""
            if too_long:
                log.warning(
                    "%s failed (%s); %s: not retried",
                    what,
                    describe_api_error(exc, secrets),
                    too_long,
                )
                raise
            waited += delay
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


def _header(exc: BaseException, name: str) -> str | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get(name)
    except (AttributeError, TypeError):
        return None
    return str(value).strip() if value is not None else None


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


def _mangled(value: Any) -> bool:
    """Marks json-repair leaves where a colon was missing (`{"a" 1}`): an empty-string value,
    or the pair folded into one key holding a quote."""
    if isinstance(value, dict):
        return any('"' in str(k) or v == "" or _mangled(v) for k, v in value.items())
    if isinstance(value, list):
        return any(v == "" or _mangled(v) for v in value)
    return False


def _repaired(candidate: str) -> Any:
    """`candidate` repaired: by json-repair (a kept library, better than ours at unescaped
    quotes inside strings, comments, single-quoted apostrophes, stray brackets), except where
    ours does better: a missing colon, which json-repair reads as an empty value or folds into
    a mangled key (`{"voice" 8}` -> `{"voice": ""}`) while ours reads `{"voice": 8}`."""
    import json_repair

    theirs = json_repair.loads(candidate)
    if not _mangled(theirs):
        return theirs
    try:
        ours = json.loads(repair_json(candidate))
    except (json.JSONDecodeError, RecursionError):
        return theirs
    return ours if not _mangled(ours) else theirs


def extract_json_object(text: str) -> tuple[dict[str, Any], bool]:
    """The first JSON object in `text` and whether it needed repair.

    Tries, in order: the whole text, fenced code blocks, and brace-matched spans, each as is
    and then repaired (:func:`_repaired`).
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
            try:
                value = _repaired(cand) if repaired else json.loads(cand)
            except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
                continue
            if isinstance(value, dict):
                return value, repaired
    raise JSONExtractionError("no JSON object found in the reply")
