"""Production settings pass Django's deployment checklist and refuse to start without a secret."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _check(env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    # The browser tests allow sync ORM calls next to Playwright's loop; production never does.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update({"DJANGO_SETTINGS_MODULE": "revexos.settings.production", **env_extra})
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy():
    result = _check({"SECRET_KEY": secrets.token_urlsafe(60), "EMAIL_URL": "smtp://mail.internal:587"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_a_missing_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "DJANGO_SETTINGS_MODULE": "revexos.settings.production"},
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_structured_logs_are_json_with_the_tenant(capsys):
    import json
    import logging

    from pythonjsonlogger.json import JsonFormatter

    from revexos.logs import ContextFilter

    record = logging.LogRecord("revexos.test", logging.INFO, __file__, 1, "invoice issued", None, None)
    ContextFilter().filter(record)
    formatter = JsonFormatter("%(asctime)s %(levelname)s %(name)s %(tenant)s %(request_id)s %(message)s")
    line = json.loads(formatter.format(record))
    assert line["message"] == "invoice issued" and "tenant" in line and "request_id" in line
