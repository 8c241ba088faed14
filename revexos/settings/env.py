"""Configuration from the environment (DESIGN.md §7): small parsers, no magic."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlparse


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def mailer_settings(url: str) -> dict:
    """Translate ``EMAIL_URL`` into Django's ``MAILERS["default"]``.

    ``smtp://user:pass@host:port`` (``smtp+tls://`` for STARTTLS, ``smtp+ssl://`` for implicit
    TLS, ``?timeout=10``), ``file:///folder`` (one .log file per message, for development),
    ``console://`` and ``locmem://``.
    """
    parsed = urlparse(url)
    scheme = parsed.scheme
    if scheme == "file":
        return {"BACKEND": "django.core.mail.backends.filebased.EmailBackend", "OPTIONS": {"file_path": parsed.path}}
    if scheme == "console":
        return {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if scheme == "locmem":
        return {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    if scheme not in {"smtp", "smtp+tls", "smtp+ssl"}:
        raise ValueError(
            f"EMAIL_URL scheme {scheme!r} is not supported; use smtp://, smtp+tls://, smtp+ssl://, file://, console:// or locmem://"
        )
    query = parse_qs(parsed.query)
    return {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": parsed.hostname or "localhost",
            "port": parsed.port or (465 if scheme == "smtp+ssl" else 25),
            "username": unquote(parsed.username or ""),
            "password": unquote(parsed.password or ""),
            "use_tls": scheme == "smtp+tls",
            "use_ssl": scheme == "smtp+ssl",
            "timeout": int(query.get("timeout", ["10"])[0]),
        },
    }
