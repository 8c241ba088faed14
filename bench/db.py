"""The bench's own database: created fresh next to DATABASE_URL's, never the application's."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
import psycopg

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/revexos"


def bench_url(base_url: str, name: str) -> str:
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def conninfo(url: str) -> dict:
    cfg = dj_database_url.parse(url)
    params = {
        "dbname": cfg["NAME"],
        "user": cfg.get("USER") or None,
        "password": cfg.get("PASSWORD") or None,
        "host": cfg.get("HOST") or None,
        "port": cfg.get("PORT") or None,
    }
    return {k: v for k, v in params.items() if v not in (None, "")}


def database_recreate(base_url: str, name: str) -> str:
    """Drop and create the bench database; return its URL.

    Connects to the server's maintenance database ``postgres`` (the application's may not exist yet).
    """
    params = conninfo(base_url)
    try:
        conn = psycopg.connect(**dict(params, dbname="postgres"), autocommit=True)
    except psycopg.OperationalError:
        conn = psycopg.connect(**params, autocommit=True)
    with conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return bench_url(base_url, name)


def base_database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_URL
