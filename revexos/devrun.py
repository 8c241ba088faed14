"""``make run``: embedded or configured services, migrations, the demo tenant, web + worker + beat.

Ctrl-C stops every process and the embedded servers; the data stays under ./var/ for next time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request

from revexos.embedded import ROOT, services, var_dir

PORT = int(os.environ.get("PORT", "8000"))
PY = sys.executable


def manage(*args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=True)


def wait_for_web(url: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url, headers={"Host": f"demo.localhost:{PORT}"})
            with urllib.request.urlopen(request, timeout=2) as response:
                return response.status == 200
        except Exception:
            time.sleep(0.3)
    return False


def main() -> int:
    from revexos.demo import DEMO_PASSWORD, DEMO_USERS

    started = time.monotonic()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revexos.settings")
    os.environ.setdefault("TENANT_URL_PORT", str(PORT))
    # Invoices and invitations are e-mailed; in development they land as files under var/mail/.
    os.environ.setdefault("EMAIL_URL", f"file://{var_dir() / 'mail'}")
    with services(), contextlib.ExitStack() as stack:
        if not os.environ.get("STRIPE_API_KEY"):
            # Card payments in development: localstripe, like the embedded PostgreSQL and Redis.
            from receivables.localstripe_server import running

            os.environ["STRIPE_API_BASE"] = stack.enter_context(running())
            print(f"local Stripe server: {os.environ['STRIPE_API_BASE']}", file=sys.stderr)
        manage("migrate_schemas", "--shared", "-v", "0")
        manage("migrate_schemas", "--tenant", "-v", "0")
        manage("tenant_template", "-v", "0")
        manage("demo_setup")
        if os.environ.get("STRIPE_API_BASE") and not os.environ.get("STRIPE_API_KEY"):
            manage("stripe_dev_webhooks")
        var = var_dir()
        queue = os.environ.get("CELERY_QUEUE", "revexos")
        worker = [PY, "-m", "celery", "-A", "revexos", "worker", "-l", "INFO", "--concurrency"]
        procs = [
            subprocess.Popen([PY, "manage.py", "runserver", f"0.0.0.0:{PORT}", "--noreload"], cwd=ROOT),
            # Billing runs get a worker of their own, so PDFs and e-mails never delay them.
            subprocess.Popen([*worker, "1", "-n", "billing@%h", "-Q", f"{queue}.billing"], cwd=ROOT),
            subprocess.Popen(
                [*worker, "2", "-n", "default@%h", "-Q", f"{queue},{queue}.delivery,{queue}.integrations"], cwd=ROOT
            ),
            subprocess.Popen(
                [PY, "-m", "celery", "-A", "revexos", "beat", "-l", "INFO", "-s", str(var / "celerybeat-schedule")],
                cwd=ROOT,
            ),
        ]
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            ready = wait_for_web(f"http://127.0.0.1:{PORT}/accounts/login/")
            elapsed = time.monotonic() - started
            print("\n" + "=" * 64)
            print(f"RevExOS is running{'' if ready else ' (web not answering yet)'} after {elapsed:.1f}s")
            print(f"  Demo workspace: http://demo.localhost:{PORT}/")
            print(f"  Sign-up page:   http://localhost:{PORT}/")
            print(f"  API docs:       http://demo.localhost:{PORT}/api/v1/docs")
            print(f"  E-mail:         {os.environ['EMAIL_URL']}")
            print(f"  Demo logins (password: {DEMO_PASSWORD}):")
            for email, _, label, name in DEMO_USERS:
                print(f"    {label:<16} {email:<24} ({name})")
            print("Press Ctrl-C to stop.")
            print("=" * 64 + "\n", flush=True)
            while not stopping and all(p.poll() is None for p in procs):
                time.sleep(0.5)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
            print("RevExOS stopped; data kept in ./var/.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
