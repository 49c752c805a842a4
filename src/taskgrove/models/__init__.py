"""Model backends behind one call: :func:`create_model`.

Specs:
  ``None`` / ``local`` / ``local:default``  the embedded SmolLM2-135M-Instruct (offline)
  ``local:<hf-id | dir | file.gguf>``       any transformers causal LM; a dir with
                                            ``adapter_config.json`` is a PEFT adapter on its base
  ``local:<base>+<adapter_dir>``            a PEFT adapter on an explicit base
  ``vllm:<hf-id | dir | default>``          a vLLM server started (and stopped) by taskgrove
  ``openai/<model>``                        an OpenAI-compatible server at ``base_url``; several
                                            comma-separated URLs are replicas (load-balanced)
  ``<provider>/<model>``                    any provider litellm knows (``together_ai/...``)

This module imports nothing heavy; each backend imports its libraries when it is created.
"""

from __future__ import annotations

from pathlib import Path

from taskgrove.core import Model
from taskgrove.models.errors import ModelError
from taskgrove.models.sampling import SAMPLING_KEYS, Sampling
from taskgrove.models.spec import ModelSpec, parse_spec

__all__ = ["SAMPLING_KEYS", "ModelError", "ModelSpec", "Sampling", "create_model", "parse_spec"]


def create_model(
    spec: str | None,
    *,
    batch_size: int = 10,
    concurrency: int = 32,
    base_url: str | None = None,
    request_timeout: float = 60.0,
    max_retries: int = 5,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    api_key_env: str | None = None,
    batch: bool = False,
    batch_poll_interval: float = 10.0,
    replicas: int = 1,
) -> Model:
    """Build the model ``spec`` names, wrapped in the response cache unless ``cache=False``.

    ``batch_size`` applies to local models (sequences per batch), ``concurrency`` to remote ones
    (requests in flight). Responses are cached in ``<cache_dir>/responses.sqlite``; ``cache_dir``
    defaults to taskgrove's cache root (``$TASKGROVE_CACHE`` or ``~/.cache/taskgrove``), where
    converted local models also live (``<root>/models/``). ``api_key_env`` names the environment
    variable holding the OpenAI-compatible API key (default ``OPENAI_API_KEY``). ``batch`` sends
    ``openai/...`` and ``anthropic/...`` requests through the provider's batch API (at most
    ``concurrency`` requests a batch; status polled from every ``batch_poll_interval`` seconds).
    ``replicas`` starts that many vLLM servers for a ``vllm:`` spec, balanced as one model.
    """
    from taskgrove.models.paths import cache_root

    parsed = parse_spec(spec)
    model: Model
    if batch:
        from taskgrove.models.batch_setup import create_batch_model

        model = create_batch_model(
            parsed,
            base_url=base_url,
            api_key_env=api_key_env,
            max_requests=concurrency,
            poll_s=batch_poll_interval,
            request_timeout=request_timeout,
            max_retries=max_retries,
        )
    elif parsed.kind == "local":
        from taskgrove.models.local import LocalModel

        model = LocalModel.load(parsed.target, parsed.adapter, batch_size=batch_size)
    elif parsed.kind == "vllm":
        from taskgrove.models.vllm_server import create_vllm

        model = create_vllm(
            parsed.target,
            replicas=replicas,
            concurrency=concurrency,
            request_timeout=request_timeout,
            max_retries=max_retries,
        )
    elif parsed.kind == "openai" and base_url and "," in base_url:
        from taskgrove.models.replicas import create_replicas

        model = create_replicas(
            parsed.target,
            [url.strip() for url in base_url.split(",") if url.strip()],
            api_key_env=api_key_env,
            concurrency=concurrency,
            request_timeout=request_timeout,
        )
    elif parsed.kind == "openai":
        from taskgrove.models.openai_http import OpenAICompatibleModel

        model = OpenAICompatibleModel(
            parsed.target,
            base_url=base_url,
            api_key_env=api_key_env,
            concurrency=concurrency,
            request_timeout=request_timeout,
            max_retries=max_retries,
        )
    else:
        from taskgrove.models.litellm_backend import LiteLLMModel

        model = LiteLLMModel(
            parsed.target,
            base_url=base_url,
            concurrency=concurrency,
            request_timeout=request_timeout,
            max_retries=max_retries,
        )
    if not cache:
        return model
    from taskgrove.models.cache import CachedModel, ResponseCache

    return CachedModel(model, ResponseCache(cache_root(cache_dir) / "responses.sqlite"))
