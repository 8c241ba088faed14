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
    """Drop (in the background) and create the bench database; return its URL.

    Connects to the server's maintenance database ``postgres`` (the application's may not exist yet).
    """
    params = conninfo(base_url)
    try:
        conn = psycopg.connect(**dict(params, dbname="postgres"), autocommit=True)
    except psycopg.OperationalError:
        conn = psycopg.connect(**params, autocommit=True)
    with conn:
        _drop_in_background(conn, params, name)
        conn.execute(f'CREATE DATABASE "{name}"')
    return bench_url(base_url, name)


def base_database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_URL


def _migrations_fingerprint() -> str:
    """Every migration file's path and content: the cached base database is current while this holds."""
    import hashlib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(root.glob("**/migrations/*.py")):
        if ".venv" in path.parts or "site-packages" in path.parts:
            continue
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    import django

    digest.update(django.__version__.encode())
    return digest.hexdigest()[:16]


def database_from_base(base_url: str, name: str, base_name: str | None = None) -> tuple[str, bool]:
    """Recreate the bench database as a copy of ``<name>_base`` (public schema migrated, tenant template
    current); the base is rebuilt only when a migration changed. Returns (URL, whether it was rebuilt).

    Setting up takes a minute of migrations that no figure measures; copying a database takes a second.
    """
    import subprocess
    import sys

    params = conninfo(base_url)
    base_name = base_name or f"{name}_base"
    fingerprint = _migrations_fingerprint()
    with psycopg.connect(**dict(params, dbname="postgres"), autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [base_name]
        ).fetchone()
    rebuilt = row is None or row[0] != fingerprint
    if rebuilt:
        url = database_recreate(base_url, base_name)
        env = dict(os.environ, DATABASE_URL=url, DJANGO_SETTINGS_MODULE="revexos.settings")
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        for command in (["migrate_schemas", "--shared", "-v", "0"], ["tenant_template", "-v", "0"]):
            subprocess.run([sys.executable, "manage.py", *command], cwd=root, env=env, check=True)
        with psycopg.connect(**dict(params, dbname="postgres"), autocommit=True) as conn:
            conn.execute(f"COMMENT ON DATABASE \"{base_name}\" IS '{fingerprint}'")
    with psycopg.connect(**dict(params, dbname="postgres"), autocommit=True) as conn:
        _drop_in_background(conn, params, name)
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{base_name}"')
    return bench_url(base_url, name), rebuilt


_DROP_SCRIPT = """
import json, sys, psycopg
params, names = json.loads(sys.argv[1]), sys.argv[2:]
with psycopg.connect(**params, autocommit=True) as conn:
    for name in names:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
"""


def _drop_in_background(conn, params: dict, name: str) -> None:
    """Set the previous run's database aside (renamed) and drop it in a detached process.

    ``DROP DATABASE`` waits for an immediate checkpoint, which on a shared, busy disk takes a minute
    or more of flushing everyone's dirty pages: the run goes on meanwhile (copying the base is
    WAL-logged, without a checkpoint). Databases set aside by earlier runs are dropped too."""
    import json
    import subprocess
    import sys
    import uuid

    stale_prefix = f"{name}_stale_"
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
        try:
            conn.execute(f'ALTER DATABASE "{name}" RENAME TO "{stale_prefix}{uuid.uuid4().hex[:8]}"')
        except psycopg.Error:  # a connection came back: drop it here and now
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    stale = [
        row[0]
        for row in conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY 1", [stale_prefix]
        )
    ]
    if stale:
        subprocess.Popen(
            [sys.executable, "-c", _DROP_SCRIPT, json.dumps(dict(params, dbname="postgres")), *stale],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
