"""Parsing model specs: ``local[:target[+adapter]]``, ``openai/<model>``, ``<litellm-provider>/<model>``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from taskgrove.models.errors import ModelError

DEFAULT_TARGET = "default"

SPEC_HELP = (
    "use 'local' (the embedded SmolLM2-135M-Instruct), 'local:<hf-id-or-dir>', "
    "'local:<base>+<adapter_dir>', 'vllm:<hf-id-or-dir>' (a vLLM server taskgrove starts), 'openai/<model>' (any OpenAI-compatible server, with --base_url) "
    "or '<provider>/<model>' for a provider litellm knows, e.g. 'together_ai/<org>/<model>'"
)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A parsed spec. ``target`` is the local model (``default``, a dir, a .gguf file or a hub id),
    the OpenAI model name, or the full litellm model string."""

    kind: Literal["local", "openai", "litellm", "vllm"]
    target: str
    adapter: str | None = None


def parse_spec(spec: str | None) -> ModelSpec:
    """Parse ``spec``; raise :class:`ModelError` with the accepted forms for anything else.

    Only a ``<provider>/...`` spec that is neither local nor openai imports litellm, to check
    that litellm knows the provider.
    """
    if spec is None:
        return ModelSpec("local", DEFAULT_TARGET)
    text = spec.strip()
    if text in ("", "local"):
        return ModelSpec("local", DEFAULT_TARGET)
    if text.startswith("vllm:"):
        target = text.removeprefix("vllm:").strip()
        if not target:
            raise ModelError(f"Malformed model spec {spec!r}: expected 'vllm:<hf-id-or-dir>' or 'vllm:default'.")
        return ModelSpec("vllm", target)
    if text.startswith("local:"):
        return _parse_local(text.removeprefix("local:").strip(), spec)
    provider, sep, rest = text.partition("/")
    if not sep or not provider or not rest:
        raise ModelError(f"Unknown model spec {spec!r}: {SPEC_HELP}.")
    if provider == "openai":
        return ModelSpec("openai", rest)
    if provider not in litellm_providers():
        raise ModelError(f"Unknown model spec {spec!r}: provider {provider!r} is not one litellm knows; {SPEC_HELP}.")
    return ModelSpec("litellm", text)


def _parse_local(target: str, spec: str) -> ModelSpec:
    if not target:
        return ModelSpec("local", DEFAULT_TARGET)
    base, plus, adapter = target.rpartition("+")
    if plus and base.strip() and adapter.strip():
        return ModelSpec("local", base.strip(), adapter.strip())
    if plus:
        raise ModelError(f"Malformed model spec {spec!r}: expected 'local:<base>+<adapter_dir>'.")
    return ModelSpec("local", target)


def litellm_providers() -> frozenset[str]:
    """The provider prefixes litellm understands (imports litellm)."""
    from taskgrove.models.litellm_backend import import_litellm

    litellm = import_litellm()
    return frozenset(str(getattr(p, "value", p)) for p in litellm.provider_list)
