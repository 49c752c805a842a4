"""Secrets stay out of files: credentials in URLs, key-like values and values under key-like
names are replaced by ``***`` before config.yaml, run.json, sample errors, log lines or
messages are written.

What is redacted: the user-info of any ``scheme://user:password@host`` (the password, or a
lone user name, which is often a token), secret query parameters (``?api_key=...``), tokens in
well-known formats (``sk-...``, ``Bearer ...``, ``hf_...``, ``ghp_...``, ``AKIA...``), every value
under a key named like a secret (``api_key``, ``token``, ``password``, ``authorization``, ...;
``*_env`` keys, which hold a variable's name, are kept) and any exact value registered with
:func:`add_secret` (the executor registers the API key it reads from the environment).
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"

_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/\s:@]*)(?::(?P<password>[^/\s@]*))?@")
_QUERY_SECRET = re.compile(
    r"(?P<name>[?&](?:api[_-]?key|key|token|access[_-]?token|secret|password|passwd|sig|signature)=)[^&\s#\"']+",
    re.IGNORECASE,
)
_TOKENS = re.compile(
    r"\b(?:sk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|xox[abpr]-[A-Za-z0-9-]{10,}"
    r"|AKIA[0-9A-Z]{16})\b|(?<=Bearer )[A-Za-z0-9._~+/=-]{8,}",
)
_SECRET_KEY = re.compile(
    r"(?:^|[_-])(?:api[_-]?key|secret(?:[_-]?key)?|private[_-]?key|access[_-]?key|passw(?:or)?d|token"
    r"|auth(?:orization)?|credentials?|cookie)$",
    re.IGNORECASE,
)

_known: set[str] = set()


def add_secret(value: str | None) -> None:
    """Redact this exact value wherever it appears from now on (values shorter than 6 are ignored)."""
    if value and len(value) >= 6:
        _known.add(value)


def _userinfo(match: re.Match[str]) -> str:
    if match.group("password") is not None:
        return f"{match.group('scheme')}{match.group('user')}:{MASK}@"
    return f"{match.group('scheme')}{MASK}@"


def redact_text(text: str) -> str:
    """``text`` with URL credentials, secret query values, key-like tokens and registered secrets masked."""
    if "@" in text:
        text = _URL_USERINFO.sub(_userinfo, text)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: m.group("name") + MASK, text)
    text = _TOKENS.sub(MASK, text)
    for secret in _known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret value (``api_key``, ``Authorization``; not ``api_key_env``)."""
    return bool(_SECRET_KEY.search(key.strip())) and not key.lower().endswith("_env")


def redact(value: Any) -> Any:
    """A copy of JSON-like ``value`` with every secret masked (mapping keys are kept)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: (MASK if isinstance(k, str) and is_secret_key(k) and v else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def is_redacted(text: str | None) -> bool:
    """Whether a stored string had something masked (a resume must then be given the real value)."""
    return bool(text) and MASK in str(text)


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in each record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call is logging's to report, not ours
            return True
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def redact_logging() -> None:
    """Mask secrets in every log record of this process (installed by the command line)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_taskgrove_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        RedactingFilter().filter(record)
        return record

    factory._taskgrove_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
