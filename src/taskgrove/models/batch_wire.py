"""Provider batch endpoints on the wire: OpenAI-compatible ``/files`` + ``/batches`` and Anthropic
``/messages/batches``. Each provider builds request bodies, submits a batch, reports its state
and maps the downloaded results to a :class:`Choice` or a :class:`ModelError` per ``custom_id``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from taskgrove.core import Choice, Message
from taskgrove.models.errors import ModelError
from taskgrove.models.openai_format import MalformedResponse, parse_completion, request_params, wire_messages
from taskgrove.models.retry import TransientError, is_retryable_status, parse_retry_after
from taskgrove.models.sampling import Sampling

if TYPE_CHECKING:
    import httpx

Result = Choice | ModelError


@dataclass(frozen=True, slots=True)
class BatchStatus:
    """Where a submitted batch is: ``done`` once the provider will change nothing more."""

    done: bool
    state: str
    info: dict[str, Any]


class BatchProvider(Protocol):
    """One provider's batch protocol."""

    name: str
    kind: str

    def body(self, messages: list[Message], tools: list[dict[str, Any]] | None, sampling: Sampling) -> dict[str, Any]:
        """The request body one sample sends."""
        ...

    async def submit(self, client: httpx.AsyncClient, requests: list[tuple[str, dict[str, Any]]]) -> str:
        """Submit ``(custom_id, body)`` pairs as one batch; return the batch id."""
        ...

    async def status(self, client: httpx.AsyncClient, batch_id: str) -> BatchStatus:
        """The batch's current state."""
        ...

    async def results(self, client: httpx.AsyncClient, status: BatchStatus) -> dict[str, Result]:
        """Every item's outcome in a finished batch (items the provider never ran are missing)."""
        ...


async def call(
    client: httpx.AsyncClient, method: str, url: str, *, who: str, headers: dict[str, str], **kwargs: Any
) -> httpx.Response:
    """One HTTP call; 429/5xx/transport errors raise :class:`TransientError`, other 4xx :class:`ModelError`."""
    import httpx

    try:
        response = await client.request(method, url, headers=headers, **kwargs)
    except httpx.TimeoutException:
        raise TransientError(f"{method} {url}: timed out") from None
    except httpx.TransportError as exc:
        raise TransientError(f"{method} {url}: connection error ({type(exc).__name__})") from None
    if is_retryable_status(response.status_code):
        raise TransientError(
            f"{method} {url}: HTTP {response.status_code}",
            status=response.status_code,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    if response.status_code >= 400:
        raise ModelError(
            f"{who}: {method} {url}: HTTP {response.status_code}: {response.text[:300]}",
            model=who,
            status=response.status_code,
            attempts=1,
        )
    return response


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise TransientError(f"{what}: malformed JSON body") from None
    if not isinstance(data, dict):
        raise TransientError(f"{what}: expected a JSON object")
    return data


def _lines(text: str) -> list[dict[str, Any]]:
    rows = []
    for line in text.splitlines():
        if line.strip():
            row = json.loads(line)
            if isinstance(row, dict):
                rows.append(row)
    return rows


class OpenAIBatch:
    """OpenAI-compatible: upload a JSONL file (``purpose=batch``), create a batch on
    ``/v1/chat/completions``, poll it, download the output and error files."""

    kind = "openai"

    def __init__(self, model: str, base_url: str, headers: dict[str, str]) -> None:
        self.model = model
        self.name = f"openai/{model}"
        self.base_url = base_url.rstrip("/")
        self._headers = headers

    def body(self, messages: list[Message], tools: list[dict[str, Any]] | None, sampling: Sampling) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.model, "messages": wire_messages(messages), **request_params(sampling)}
        if tools:
            payload["tools"] = tools
        return payload

    async def submit(self, client: httpx.AsyncClient, requests: list[tuple[str, dict[str, Any]]]) -> str:
        lines = "".join(
            json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions", "body": body}) + "\n"
            for cid, body in requests
        )
        files = {"file": ("batch.jsonl", lines.encode(), "application/jsonl")}
        uploaded = await call(
            client, "POST", f"{self.base_url}/files", who=self.name, headers=self._headers,
            data={"purpose": "batch"}, files=files,
        )  # fmt: skip
        file_id = _json(uploaded, "file upload").get("id")
        if not isinstance(file_id, str):
            raise TransientError("file upload: no file id in the response")
        created = await call(
            client, "POST", f"{self.base_url}/batches", who=self.name, headers=self._headers,
            json={"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"},
        )  # fmt: skip
        batch_id = _json(created, "batch create").get("id")
        if not isinstance(batch_id, str):
            raise TransientError("batch create: no batch id in the response")
        return batch_id

    async def status(self, client: httpx.AsyncClient, batch_id: str) -> BatchStatus:
        response = await call(
            client, "GET", f"{self.base_url}/batches/{batch_id}", who=self.name, headers=self._headers
        )
        info = _json(response, "batch status")
        state = str(info.get("status"))
        return BatchStatus(state in ("completed", "failed", "expired", "cancelled"), state, info)

    async def results(self, client: httpx.AsyncClient, status: BatchStatus) -> dict[str, Result]:
        out: dict[str, Result] = {}
        for key in ("error_file_id", "output_file_id"):  # output last: a success wins over a stale error line
            file_id = status.info.get(key)
            if not file_id:
                continue
            response = await call(
                client, "GET", f"{self.base_url}/files/{file_id}/content", who=self.name, headers=self._headers
            )
            for row in _lines(response.text):
                out[str(row.get("custom_id"))] = self._item(row)
        return out

    def _item(self, row: dict[str, Any]) -> Result:
        error = row.get("error")
        response = row.get("response") or {}
        code = response.get("status_code")
        if error or code != 200:
            body = response.get("body") or {}
            detail = error or (body.get("error") if isinstance(body, dict) else None) or body
            message = detail.get("message", detail) if isinstance(detail, dict) else detail
            return ModelError(
                f"{self.name}: batch item failed (HTTP {code}): {message}", model=self.name, status=code, attempts=1
            )
        try:
            return parse_completion(response.get("body"), latency_s=0.0)
        except MalformedResponse as exc:
            return ModelError(f"{self.name}: batch item: {exc}", model=self.name, status=code, attempts=1)


class AnthropicBatch:
    """Anthropic message batches: ``POST /messages/batches`` with the requests inline, poll until
    ``processing_status == "ended"``, then read ``results_url`` (JSONL)."""

    kind = "anthropic"

    def __init__(self, model: str, base_url: str, headers: dict[str, str]) -> None:
        self.model = model
        self.name = f"anthropic/{model}"
        self.base_url = base_url.rstrip("/")
        self._headers = {**headers, "anthropic-version": "2023-06-01"}

    def body(self, messages: list[Message], tools: list[dict[str, Any]] | None, sampling: Sampling) -> dict[str, Any]:
        if tools:
            raise ModelError(f"{self.name}: tool calls are not supported through the batch API yet", model=self.name)
        system = "\n\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "system")
        turns = [{"role": m["role"], "content": m.get("content") or ""} for m in messages if m.get("role") != "system"]
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": sampling.max_tokens,
            "messages": turns,
            "temperature": sampling.temperature,
        }
        if system:
            params["system"] = system
        if sampling.top_p != 1.0:
            params["top_p"] = sampling.top_p
        if sampling.top_k is not None:
            params["top_k"] = sampling.top_k
        if sampling.stop:
            params["stop_sequences"] = list(sampling.stop)
        return params

    async def submit(self, client: httpx.AsyncClient, requests: list[tuple[str, dict[str, Any]]]) -> str:
        payload = {"requests": [{"custom_id": cid, "params": body} for cid, body in requests]}
        response = await call(
            client, "POST", f"{self.base_url}/messages/batches", who=self.name, headers=self._headers, json=payload
        )
        batch_id = _json(response, "batch create").get("id")
        if not isinstance(batch_id, str):
            raise TransientError("batch create: no batch id in the response")
        return batch_id

    async def status(self, client: httpx.AsyncClient, batch_id: str) -> BatchStatus:
        response = await call(
            client, "GET", f"{self.base_url}/messages/batches/{batch_id}", who=self.name, headers=self._headers
        )
        info = _json(response, "batch status")
        state = str(info.get("processing_status"))
        return BatchStatus(state == "ended", state, info)

    async def results(self, client: httpx.AsyncClient, status: BatchStatus) -> dict[str, Result]:
        url = status.info.get("results_url")
        if not url:
            return {}
        response = await call(client, "GET", str(url), who=self.name, headers=self._headers)
        return {str(row.get("custom_id")): self._item(row) for row in _lines(response.text)}

    def _item(self, row: dict[str, Any]) -> Result:
        result = row.get("result") or {}
        kind = result.get("type")
        if kind != "succeeded":
            error = result.get("error") or {}
            inner = error.get("error", error) if isinstance(error, dict) else error
            message = inner.get("message", inner) if isinstance(inner, dict) else inner
            return ModelError(f"{self.name}: batch item {kind}: {message or kind}", model=self.name, attempts=1)
        message = result.get("message") or {}
        try:
            text = "".join(block["text"] for block in message["content"] if block.get("type") == "text")
            usage = message.get("usage") or {}
            counts = {"prompt_tokens": int(usage["input_tokens"]), "completion_tokens": int(usage["output_tokens"])}
        except (KeyError, TypeError, ValueError) as exc:
            return ModelError(f"{self.name}: batch item: malformed message ({exc})", model=self.name, attempts=1)
        finish = "length" if message.get("stop_reason") == "max_tokens" else "stop"
        return Choice(text, usage=counts, finish_reason=finish)
