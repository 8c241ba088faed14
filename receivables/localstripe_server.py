"""Run localstripe (a stateful Stripe-compatible server from PyPI) for development and tests.

``make run`` starts it when ``STRIPE_API_KEY`` is unset, like the embedded PostgreSQL and Redis;
the tests start one per session. ``STRIPE_API_BASE`` then points the Stripe client, and the
Stripe.js stand-in it serves, at it. Two adjustments, made here rather than in the package:

- Its webhooks go to ``<tenant>.localhost`` URLs; ``*.localhost`` is loopback by RFC 6761 (and
  for Chromium), but the C resolver does not know that, so lookups of such names answer
  127.0.0.1 in this process.
- Its state stays in memory: the package would pickle it to a fixed file under /tmp on every
  write, which several servers on one machine would share.

    python -m receivables.localstripe_server --port 8420
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator


def _localhost_resolves_to_loopback() -> None:
    original = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return original(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


def main() -> None:
    _localhost_resolves_to_loopback()
    from localstripe import resources, server

    resources.Store.dump_to_disk = lambda self: None
    if "--from-scratch" not in sys.argv:
        sys.argv.append("--from-scratch")
    server.start()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(base: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(f"{base}/v1/balance", headers={"Authorization": "Bearer sk_test_probe"})
            with urllib.request.urlopen(request, timeout=2):
                return True
        except Exception:
            time.sleep(0.2)
    return False


@contextlib.contextmanager
def running(port: int | None = None, *, quiet: bool = True) -> Iterator[str]:
    """Start a localstripe subprocess on a free port; yields its base URL, stops it on exit."""
    port = port or free_port()
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.Popen(
        [sys.executable, "-m", "receivables.localstripe_server", "--port", str(port)],
        stdout=out,
        stderr=out,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    base = f"http://localhost:{port}"
    try:
        if not wait_until_up(base):
            raise RuntimeError(f"localstripe did not start on port {port}")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def webhook_register(base: str, *, name: str, url: str, secret: str) -> None:
    """Ask localstripe to send its events to ``url`` signed with ``secret`` (its /_config route)."""
    from urllib.parse import urlencode

    data = urlencode({"url": url, "secret": secret}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{base}/_config/webhooks/{name}", data=data), timeout=5):
        pass


if __name__ == "__main__":
    main()
