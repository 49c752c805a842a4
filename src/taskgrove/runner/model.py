"""A model seen through a task's sampling settings (defaults that each call may override)."""

from __future__ import annotations

from typing import Any

from taskgrove.config import RunConfig
from taskgrove.core import Choice, Message, Model, supports_loglikelihood
from taskgrove.models.tool_calls import validate_tools


class ConfiguredModel:
    """Wraps a model so every ``generate`` gets the run's sampling values unless the task passes its own."""

    def __init__(self, model: Model, sampling: dict[str, Any]) -> None:
        self.inner = model
        self.name = model.name
        self.sampling = {k: v for k, v in sampling.items() if v is not None}

    async def generate(
        self, messages: list[Message], *, tools: list[dict[str, Any]] | None = None, **sampling: Any
    ) -> Choice:
        checked = validate_tools(tools)
        return await self.inner.generate(messages, tools=checked, **{**self.sampling, **sampling})

    async def loglikelihood(self, context: list[Message], continuations: list[str]) -> list[float]:
        scorer = getattr(self.inner, "loglikelihood", None)
        if scorer is None:
            raise NotImplementedError(f"model {self.name} cannot score continuations")
        return await scorer(context, continuations)

    def openai_client(self) -> Any:
        """An ``openai.AsyncOpenAI`` answered in process by this model (cache, batching and the
        run's sampling defaults apply); see :mod:`taskgrove.models.openai_client`."""
        from taskgrove.models.openai_client import openai_client

        return openai_client(self)

    @property
    def supports_loglikelihood(self) -> bool:
        """Whether the wrapped model can score (the wrapper always has the method)."""
        return supports_loglikelihood(self.inner)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)


def default_model_factory(config: RunConfig) -> Model:
    """The backend named by ``config.model``; ``py:FILE.py:FACTORY`` or ``py:MODULE:FACTORY``
    builds a user-defined Model class instead."""
    if config.model and config.model.startswith("py:"):
        from taskgrove.registry.user_code import load_object

        return load_object(config.model[3:])()
    from taskgrove.models import create_model

    return create_model(
        config.model,
        batch_size=config.batch_size,
        concurrency=config.concurrency,
        base_url=config.base_url,
        request_timeout=config.request_timeout,
        max_retries=config.max_retries,
        cache=config.cache,
        cache_dir=config.cache_dir,
        api_key_env=config.api_key_env,
        batch=config.batch,
        batch_poll_interval=config.batch_poll_interval,
        replicas=config.replicas,
    )


def check_model_spec(config: RunConfig) -> None:
    """Fail fast (:class:`ConfigError`, before any folder exists) on a model spec that cannot
    work: an unknown form, a ``py:`` factory that does not load, a local path that is not there.
    Loads no weights and contacts no server."""
    from taskgrove.errors import ConfigError, TaskgroveError

    spec = config.model
    if spec and spec.startswith("py:"):
        from taskgrove.registry.user_code import load_object

        try:
            factory = load_object(spec[3:])
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"--model {spec}: {type(exc).__name__}: {exc}") from None
        if not callable(factory):
            raise ConfigError(f"--model {spec}: {spec[3:]} is not callable")
        return
    from pathlib import Path

    from taskgrove.models.spec import parse_spec

    try:
        parsed = parse_spec(spec)
    except TaskgroveError as exc:
        raise ConfigError(str(exc)) from None
    if parsed.kind != "local":
        return
    for target in (parsed.target, parsed.adapter):
        if target is None or target == "default":
            continue
        path = Path(target).expanduser()
        if path.is_dir() or (path.is_file() and path.suffix == ".gguf"):
            continue
        if path.exists() or target.startswith((".", "/", "~")):
            raise ConfigError(f"--model {spec}: {target} is neither a model folder nor a .gguf file")
