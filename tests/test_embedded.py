"""`make run`'s default: with no DATABASE_URL/REDIS_URL it starts PostgreSQL and Redis from wheels."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def _get(url: str, host: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Host": host})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read().decode()


def test_the_embedded_default_serves_the_demo_login_page_and_stops_cleanly(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(REVEXOS_VAR=str(tmp_path / "var"), PORT=str(port), PYTHONUNBUFFERED="1")
    log = open(tmp_path / "run.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "revexos.devrun"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 240
        status, page = None, ""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, page = _get(f"http://127.0.0.1:{port}/accounts/login/", f"demo.localhost:{port}")
                break
            except Exception:
                time.sleep(1)
        log.seek(0)
        output = log.read()
        assert status == 200, f"no login page; output:\n{output[-4000:]}"
        assert "Sign in" in page and "Northwind" in page
        assert (tmp_path / "var" / "pg" / "PG_VERSION").exists(), "PostgreSQL data is not under the var folder"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = "killed"
        log.seek(0)
        output = log.read()
        log.close()
    assert code == 0, output[-4000:]
    assert "RevExOS stopped" in output
