"""The one error every model backend raises on purpose."""

from __future__ import annotations

from taskgrove.errors import TaskgroveError


class ModelError(TaskgroveError):
    """A model could not be created, or a request to it failed for good (retries exhausted).

    ``model`` is the model's public name, ``status`` the last HTTP status seen (``None`` when
    there was none, e.g. a timeout), ``attempts`` how many attempts were made. ``fatal`` says
    every request to this model would fail the same way (a host name that does not resolve,
    HTTP 401/403/404, a rejected TLS certificate, a server that refused every retry and never
    answered): the executor stops the task at such an error instead of trying the other samples.
    Messages keep the root cause and never contain credentials.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        status: int | None = None,
        attempts: int | None = None,
        fatal: bool = False,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.status = status
        self.attempts = attempts
        self.fatal = fatal
