"""A fake Anthropic API: an HTTP transport that replays scripted responses.

The real `anthropic` client (which speaks HTTP through `httpx2` in anthropic 2.x) is built
with this transport, so request building, response parsing, error classes and the SDK's
own retries are all exercised while nothing leaves the process:

    transport = FakeTransport([
        tool_use_message("propose_probe", {...}),
        error_reply(429, "rate_limit_error", "slow down"),
        text_message("A one-line reading."),
    ])
    client = fake_client(transport)          # anthropic.Anthropic(api_key="test-key", ...)
    ...
    transport.requests[1].json["messages"]   # what the code under test sent
    transport.check()                        # every scripted reply was used, nothing more

A reply is a `Reply`, a JSON-able dict (a 200 with that body), a callable taking the
`RecordedRequest` and returning either, or `TIMEOUT` (the transport raises a read timeout).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx2

if TYPE_CHECKING:
    import anthropic

__all__ = [
    "TEST_API_KEY",
    "TIMEOUT",
    "FakeTransport",
    "RecordedRequest",
    "Reply",
    "batch_reply",
    "batch_results_reply",
    "error_reply",
    "fake_client",
    "message",
    "serve",
    "text_message",
    "tool_use_message",
]

TEST_API_KEY = "sk-ant-test-0000-DO-NOT-LEAK"
"""The key fake clients are built with; tests assert it never shows up anywhere."""

FAKE_BASE_URL = "http://fake-anthropic.invalid"

_ids = itertools.count(1)


# -- what the real API refuses (API version 2026-10-21) -----------------------------------------
# Written from Anthropic's documentation (sources in docs/agent.md, "Models"), independently of
# the code under test's own table (probes/llm.py MODEL_TRAITS): a request that breaks one of
# these is answered 400 invalid_request_error, as the real API answers it.

_NO_FORCED_TOOL_CHOICE = (
    "claude-opus-5-5",
    "claude-sonnet-5-5",
    "claude-fable-5-1",
    "claude-mythos-5-1",
)
_ALWAYS_THINKING = ("claude-opus-5-5", "claude-sonnet-5-5", "claude-fable-5", "claude-mythos-5")
"""`thinking: {type: disabled}` is a 400 (Sonnet 5.5 offers `between_tools` instead)."""
_NO_MANUAL_THINKING = (
    "claude-opus-5",
    "claude-sonnet-5",
    "claude-haiku-5",
    "claude-fable-5",
    "claude-mythos-5",
    "claude-opus-4-8",
    "claude-opus-4-7",
)
"""`thinking: {type: enabled, budget_tokens}` is a 400 (adaptive only)."""
_NO_PREFILL = (
    "claude-opus-5",
    "claude-sonnet-5",
    "claude-haiku-5",
    "claude-fable-5",
    "claude-mythos-5",
    "claude-opus-4-8",
    "claude-opus-4-7",
    "claude-opus-4-6",
    "claude-sonnet-4-6",
)
_NO_EFFORT = ("claude-sonnet-4-5", "claude-haiku-4-5")
_OUTPUT_64K = ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5")
_SAMPLING = ("temperature", "top_p", "top_k")
_STRICT_UNSUPPORTED = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "maxItems",
    "uniqueItems",
    "contains",
    "minProperties",
    "maxProperties",
)
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_BATCH_REQUESTS = 100_000


def _of(model: str, prefixes: tuple[str, ...]) -> bool:
    return any(model.startswith(p) for p in prefixes)


def _strict_schema_problem(schema: Any, where: str) -> str | None:
    if isinstance(schema, list):
        for i, item in enumerate(schema):
            problem = _strict_schema_problem(item, f"{where}.{i}")
            if problem:
                return problem
        return None
    if not isinstance(schema, dict):
        return None
    for key in _STRICT_UNSUPPORTED:
        if key in schema:
            return f"{where}: '{key}' is not supported in strict mode"
    if isinstance(schema.get("minItems"), int) and schema["minItems"] > 1:
        return f"{where}: 'minItems' above 1 is not supported in strict mode"
    if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
        return f"{where}: objects must set 'additionalProperties: false' in strict mode"
    if "enum" in schema and not schema["enum"]:
        return f"{where}.enum: must have at least 1 item"
    for key, value in schema.items():
        if key in ("enum", "const", "required", "description", "default"):
            continue
        problem = _strict_schema_problem(value, f"{where}.{key}")
        if problem:
            return problem
    return None


def message_refusal(params: Any) -> str | None:
    """Why the real API would refuse these Messages API parameters (None: it accepts them)."""
    if not isinstance(params, dict):
        return "the request body must be a JSON object"
    model = str(params.get("model", ""))
    for key in _SAMPLING:
        if key in params:
            return f"{key}: Extra inputs are not permitted"
    limit = 64_000 if _of(model, _OUTPUT_64K) else 128_000
    max_tokens = params.get("max_tokens")
    if not isinstance(max_tokens, int) or max_tokens < 1:
        return "max_tokens: Field required (a positive integer)"
    if max_tokens > limit:
        return (
            f"max_tokens: {max_tokens} > {limit}, which is the maximum allowed number of "
            f"output tokens for {model}"
        )
    choice = (params.get("tool_choice") or {}).get("type")
    if choice in ("any", "tool") and _of(model, _NO_FORCED_TOOL_CHOICE):
        return 'tool_choice: type "tool" and "any" are not supported for this model.'
    thinking = params.get("thinking") or {}
    kind = thinking.get("type")
    if kind == "disabled" and _of(model, _ALWAYS_THINKING):
        return (
            '"thinking.type.disabled" is not supported for this model. Use '
            '"thinking.type.adaptive" and "output_config.effort" to control thinking '
            "behavior."
        )
    if kind == "enabled" and _of(model, _NO_MANUAL_THINKING):
        return (
            '"thinking.type.enabled" is not supported for this model. Use '
            '"thinking.type.adaptive" and "output_config.effort" to control thinking '
            "behavior."
        )
    if kind == "enabled" and choice in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    if "effort" in (params.get("output_config") or {}) and _of(model, _NO_EFFORT):
        return "output_config.effort: effort is not supported for this model"
    messages = params.get("messages") or []
    if not messages:
        return "messages: at least one message is required"
    if messages[-1].get("role") == "assistant" and _of(model, _NO_PREFILL):
        return (
            "This model does not support assistant message prefill. The conversation "
            "must end with a user message."
        )
    for i, tool in enumerate(params.get("tools") or []):
        if tool.get("strict"):
            problem = _strict_schema_problem(tool.get("input_schema"), f"tools.{i}.input_schema")
            if problem:
                return problem
    return None


def batch_refusal(body: Any) -> str | None:
    """Why the real API would refuse this Message Batch (None: it accepts it)."""
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        return "requests: at least one request is required"
    if len(requests) > MAX_BATCH_REQUESTS:
        return f"requests: at most {MAX_BATCH_REQUESTS} requests per batch"
    seen: set[str] = set()
    for i, request in enumerate(requests):
        custom_id = request.get("custom_id")
        if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
            return f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
        if custom_id in seen:
            return f"requests.{i}.custom_id: {custom_id!r} is not unique within the batch"
        seen.add(custom_id)
        problem = message_refusal(request.get("params"))
        if problem:
            return f"requests.{i}.params: {problem}"
    return None


def request_refusal(method: str, path: str, body: Any) -> str | None:
    """Why the real API would refuse this request, for the endpoints the fake speaks."""
    if method == "POST" and path == "/v1/messages":
        return message_refusal(body)
    if method == "POST" and path == "/v1/messages/batches":
        return batch_refusal(body)
    return None


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP response."""

    status: int = 200
    json: Any = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    path: str | None = None
    """When set, the request must be for this path (e.g. "/v1/messages")."""


class _Timeout:
    def __repr__(self) -> str:
        return "TIMEOUT"


TIMEOUT = _Timeout()
"""A scripted reply that makes the transport raise a read timeout."""

ReplyLike = Reply | dict[str, Any] | _Timeout | Callable[["RecordedRequest"], Any]


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake API received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class FakeTransport(httpx2.BaseTransport):
    """Answers each request with the next scripted reply, recording what was sent."""

    def __init__(
        self,
        replies: Iterable[ReplyLike] = (),
        *,
        handler: Callable[[RecordedRequest], Any] | None = None,
    ):
        self.replies: list[ReplyLike] = list(replies)
        self.handler = handler
        """Answers every request once the scripted replies are used up (whole sessions)."""
        self.requests: list[RecordedRequest] = []
        self.unexpected: list[RecordedRequest] = []
        self.refused: list[tuple[RecordedRequest, str]] = []
        """Requests answered 400 because the real API refuses them (no scripted reply used)."""

    def add(self, *replies: ReplyLike) -> FakeTransport:
        self.replies.extend(replies)
        return self

    @property
    def remaining(self) -> int:
        return len(self.replies)

    def check(self, *, allow_refused: bool = False) -> None:
        """Assert every scripted reply was consumed, no request went unanswered and (unless
        `allow_refused`) none was refused as the real API would refuse it."""
        problems = []
        if self.refused and not allow_refused:
            problems += [f"refused {r.method} {r.path}: {why}" for r, why in self.refused]
        if self.replies:
            problems.append(f"{len(self.replies)} scripted repl(ies) were never requested")
        if self.unexpected:
            paths = ", ".join(f"{r.method} {r.path}" for r in self.unexpected)
            problems.append(f"requests after the script ran out: {paths}")
        if problems:
            raise AssertionError("; ".join(problems))

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = request.read()
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        try:
            parsed = json.loads(body) if body else None
        except json.JSONDecodeError:
            parsed = None
        refusal = request_refusal(recorded.method, recorded.path, parsed)
        if refusal is not None:
            self.requests.append(recorded)
            self.refused.append((recorded, refusal))
            return httpx2.Response(
                400,
                headers={"request-id": f"req_fake_{next(_ids)}"},
                json={
                    "type": "error",
                    "error": {"type": "invalid_request_error", "message": refusal},
                },
            )
        if not self.replies and self.handler is None:
            self.unexpected.append(recorded)
            raise httpx2.ConnectError("FakeTransport: no scripted reply left", request=request)
        self.requests.append(recorded)
        reply: Any = self.replies.pop(0) if self.replies else self.handler
        if callable(reply) and not isinstance(reply, Reply):
            reply = reply(recorded)
        if isinstance(reply, _Timeout):
            raise httpx2.ReadTimeout("FakeTransport: scripted timeout", request=request)
        if isinstance(reply, dict):
            reply = Reply(json=reply)
        if not isinstance(reply, Reply):
            raise TypeError(f"FakeTransport: cannot send {reply!r}")
        if reply.path is not None and reply.path != recorded.path:
            raise AssertionError(
                f"FakeTransport: expected a request for {reply.path}, "
                f"got {recorded.method} {recorded.path}"
            )
        headers = {"request-id": f"req_fake_{next(_ids)}", **reply.headers}
        if reply.text is not None:
            headers.setdefault("content-type", "text/plain")
            return httpx2.Response(reply.status, headers=headers, content=reply.text.encode())
        return httpx2.Response(reply.status, headers=headers, json=reply.json)


@contextmanager
def serve(transport: FakeTransport) -> Iterator[str]:
    """The fake API over real HTTP on loopback (127.0.0.1, a free port), for a whole process
    under test: yields the base URL to export as ANTHROPIC_BASE_URL. Requests are answered by
    `transport` one at a time; its scripted timeouts and connection failures close the
    connection without an answer."""
    import http.server
    import threading

    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            request = httpx2.Request(
                self.command,
                f"http://127.0.0.1{self.path}",
                headers=dict(self.headers.items()),
                content=body,
            )
            try:
                with lock:
                    response = transport.handle_request(request)
            except (httpx2.TimeoutException, httpx2.ConnectError):
                self.close_connection = True
                return
            content = response.read()
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test reads transport.requests, not a log

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def fake_client(
    transport: FakeTransport, *, max_retries: int = 0, api_key: str = TEST_API_KEY
) -> anthropic.Anthropic:
    """The real anthropic client, talking to `transport` instead of the network."""
    import anthropic

    return anthropic.Anthropic(
        api_key=api_key,
        base_url=FAKE_BASE_URL,
        max_retries=max_retries,
        http_client=httpx2.Client(transport=transport, base_url=FAKE_BASE_URL),
    )


def message(
    content: list[dict[str, Any]],
    *,
    stop_reason: str = "end_turn",
    model: str = "claude-sonnet-5-5",
    input_tokens: int = 1200,
    output_tokens: int = 150,
    cache_read_input_tokens: int = 0,
    cache_creation_input_tokens: int = 0,
) -> dict[str, Any]:
    """A Messages API response body."""
    return {
        "id": f"msg_fake_{next(_ids)}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_read_input_tokens": cache_read_input_tokens,
            "cache_creation_input_tokens": cache_creation_input_tokens,
        },
    }


def tool_use_message(
    name: str, tool_input: Any, *, text: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """A response that calls one tool (optionally after some text)."""
    content: list[dict[str, Any]] = []
    if text:
        content.append({"type": "text", "text": text})
    content.append(
        {"type": "tool_use", "id": f"toolu_fake_{next(_ids)}", "name": name, "input": tool_input}
    )
    return message(content, stop_reason="tool_use", **kwargs)


def text_message(text: str, **kwargs: Any) -> dict[str, Any]:
    """A plain text response."""
    return message([{"type": "text", "text": text}], **kwargs)


def error_reply(
    status: int,
    error_type: str,
    text: str,
    *,
    headers: dict[str, str] | None = None,
    error_code: str | None = None,
) -> Reply:
    """An API error, e.g. error_reply(429, "rate_limit_error", "slow down"); `error_code` goes
    to `error.details.error_code` (e.g. "enforced_spend_limit_reached"), as the API sends it."""
    error: dict[str, Any] = {"type": error_type, "message": text}
    if error_code is not None:
        error["details"] = {"error_code": error_code}
    return Reply(
        status=status,
        json={"type": "error", "error": error, "request_id": f"req_fake_{next(_ids)}"},
        headers=headers or {},
    )


def batch_reply(batch_id: str, *, ended: bool, n: int = 1, path: str | None = None) -> Reply:
    """A Message Batch object (in progress, or ended with a results URL)."""
    return Reply(
        path=path,
        json={
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "ended" if ended else "in_progress",
            "request_counts": {
                "processing": 0 if ended else n,
                "succeeded": n if ended else 0,
                "errored": 0,
                "canceled": 0,
                "expired": 0,
            },
            "created_at": "2026-01-01T00:00:00Z",
            "expires_at": "2026-01-02T00:00:00Z",
            "ended_at": "2026-01-01T01:00:00Z" if ended else None,
            "results_url": f"{FAKE_BASE_URL}/v1/messages/batches/{batch_id}/results"
            if ended
            else None,
        },
    )


def batch_results_reply(results: dict[str, dict[str, Any] | None]) -> Reply:
    """The JSONL results of a batch: custom_id -> message body (None: an errored request)."""
    lines = []
    for custom_id, body in results.items():
        if body is None:
            result: dict[str, Any] = {
                "type": "errored",
                "error": {"type": "error", "error": {"type": "api_error", "message": "boom"}},
            }
        else:
            result = {"type": "succeeded", "message": body}
        lines.append(json.dumps({"custom_id": custom_id, "result": result}))
    return Reply(text="\n".join(lines) + "\n", headers={"content-type": "application/binary"})
