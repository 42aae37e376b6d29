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
from collections.abc import Callable, Iterable
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
    "text_message",
    "tool_use_message",
]

TEST_API_KEY = "sk-ant-test-0000-DO-NOT-LEAK"
"""The key fake clients are built with; tests assert it never shows up anywhere."""

FAKE_BASE_URL = "http://fake-anthropic.invalid"

_ids = itertools.count(1)


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

    def add(self, *replies: ReplyLike) -> FakeTransport:
        self.replies.extend(replies)
        return self

    @property
    def remaining(self) -> int:
        return len(self.replies)

    def check(self) -> None:
        """Assert every scripted reply was consumed and no request went unanswered."""
        problems = []
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
