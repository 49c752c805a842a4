"""Building a :class:`BatchModel` from a model spec: the provider, its URL and its API key."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from taskgrove.models.batch_api import BatchModel
from taskgrove.models.batch_wire import AnthropicBatch, BatchProvider, OpenAIBatch
from taskgrove.models.errors import ModelError
from taskgrove.models.spec import ModelSpec

OPENAI_URL = "https://api.openai.com/v1"
ANTHROPIC_URL = "https://api.anthropic.com/v1"
BATCH_SPECS = "--batch works with 'openai/<model>' (any OpenAI-compatible server) and 'anthropic/<model>'"


def batch_provider(spec: ModelSpec, *, base_url: str | None, api_key_env: str | None) -> BatchProvider:
    """The batch protocol for ``spec``, with its credentials (read from the environment)."""
    if spec.kind == "openai":
        url = base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL
        key_env = api_key_env or "OPENAI_API_KEY"
        key = _key(f"openai/{spec.target}", url, OPENAI_URL, key_env, explicit=api_key_env is not None)
        return OpenAIBatch(spec.target, url, {"Authorization": f"Bearer {key}"} if key else {})
    if spec.kind == "litellm" and spec.target.startswith("anthropic/"):
        model = spec.target.removeprefix("anthropic/")
        url = base_url or ANTHROPIC_URL
        key_env = api_key_env or "ANTHROPIC_API_KEY"
        key = _key(spec.target, url, ANTHROPIC_URL, key_env, explicit=api_key_env is not None)
        return AnthropicBatch(model, url, {"x-api-key": key} if key else {})
    shown = "local" if spec.kind == "local" else spec.target
    raise ModelError(f"--batch cannot drive model {shown!r}: {BATCH_SPECS}.")


def _key(name: str, url: str, official: str, key_env: str, *, explicit: bool) -> str | None:
    key = os.environ.get(key_env)
    if not key and (explicit or urlsplit(url).hostname == urlsplit(official).hostname):
        raise ModelError(f"{name}: no API key: set the environment variable {key_env}")
    return key or None


def create_batch_model(
    spec: ModelSpec,
    *,
    base_url: str | None,
    api_key_env: str | None,
    max_requests: int,
    poll_s: float,
    request_timeout: float,
    max_retries: int,
) -> BatchModel:
    """A :class:`BatchModel` for ``spec`` (``openai/...`` or ``anthropic/...``)."""
    provider = batch_provider(spec, base_url=base_url, api_key_env=api_key_env)
    return BatchModel(
        provider, max_requests=max_requests, poll_s=poll_s, request_timeout=request_timeout, max_retries=max_retries
    )
