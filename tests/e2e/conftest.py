"""End-to-end harness: Debian's headless Chromium driven by Playwright against a live server.

Tests get ``page`` (a fresh browser context) and ``shot(name)`` to save a screenshot under
test-artifacts/ for people to look at. Data is committed, so tests use unique names.
"""
from __future__ import annotations

import os
import shutil

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls tests make are still sync.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is not installed: run `make system-deps` (Debian package chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, committed_db, live_server_url):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


@pytest.fixture
def shot(page, artifacts_dir, request):
    def take(name: str, *, full_page: bool = True) -> str:
        path = os.path.join(artifacts_dir, f"{request.node.name}-{name}.png")
        page.screenshot(path=path, full_page=full_page)
        return path

    return take
