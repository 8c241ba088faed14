"""Shared test fixtures: two committed tenants (A and B), role users, API keys, a live server.

Tenants are created once per session and committed, so a live server thread and a real Celery
worker can see them. Tests that only need the ORM use the ``db`` fixture (rolled back after each
test); tests that need committed data use ``committed_db`` and create uniquely named rows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from dataclasses import dataclass, field

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from revexos.accounts.models import Role

PASSWORD = "correct-horse-battery-9"


def pytest_configure(config):
    from django.conf import settings

    # Hashing strength is not under test; PBKDF2 would make every login in the suite slow.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class TenantFixture:
    slug: str
    schema: str
    host: str
    api_key: str
    users: dict[str, str] = field(default_factory=dict)  # role -> e-mail

    def url(self, base: str, path: str = "/") -> str:
        port = base.rsplit(":", 1)[1]
        return f"http://{self.host}:{port}{path}"


def _provision(slug: str) -> TenantFixture:
    from revexos.tenancy.models import Tenant
    from revexos.tenancy.services.provisioning import tenant_provision

    users = {role.value: f"{role.value}@{slug}.example" for role in Role}
    if Tenant.objects.filter(slug=slug).exists():
        raise RuntimeError(f"test tenant {slug} already exists; is the test database stale? use --create-db")
    result = tenant_provision(
        slug=slug,
        name=f"{slug.title()} Corp",
        admin_email=users[Role.ADMIN],
        admin_password=PASSWORD,
        with_api_key=True,
        extra_users=[(email, PASSWORD, role) for role, email in users.items() if role != Role.ADMIN],
    )
    return TenantFixture(
        slug=slug, schema=result.tenant.schema_name, host=result.domain, api_key=result.api_key, users=users
    )


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker, django_db_keepdb, django_db_createdb):
    """The test database, always for ``default`` (pytest-django would skip it when no test is marked
    ``django_db``, but live-server and worker tests use committed data instead), plus tenants A and B."""
    from django.test.utils import setup_databases, teardown_databases

    keepdb = django_db_keepdb and not django_db_createdb
    with django_db_blocker.unblock():
        db_cfg = setup_databases(
            verbosity=0, interactive=False, aliases={"default"}, serialized_aliases=set(), keepdb=keepdb
        )
        tenants = {"a": _provision("tenant-a"), "b": _provision("tenant-b")}
        connection.set_schema_to_public()
    pytest.revexos_tenants = tenants  # read by the tenant_a / tenant_b fixtures
    yield
    if not keepdb:
        with django_db_blocker.unblock():
            connection.set_schema_to_public()
            # Live-server request threads and worker processes may still hold connections.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            teardown_databases(db_cfg, verbosity=0)


@pytest.fixture(scope="session")
def tenant_a(django_db_setup) -> TenantFixture:
    return pytest.revexos_tenants["a"]


@pytest.fixture(scope="session")
def tenant_b(django_db_setup) -> TenantFixture:
    return pytest.revexos_tenants["b"]


@pytest.fixture
def in_tenant_a(db, tenant_a):
    """Run the test body in tenant A's schema (rolled back afterwards)."""
    with schema_context(tenant_a.schema):
        yield tenant_a
    connection.set_schema_to_public()


@pytest.fixture
def committed_db(django_db_setup, django_db_blocker):
    """Database access without a wrapping transaction: for live servers and real workers."""
    with django_db_blocker.unblock():
        yield
        connection.set_schema_to_public()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server_url(django_db_setup):
    """A threaded live server over the test database, serving every tenant host on one port."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.test.testcases import LiveServerThread

    thread = LiveServerThread("127.0.0.1", StaticFilesHandler, connections_override=None, port=0)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    yield f"http://localhost:{thread.port}"
    thread.terminate()


@pytest.fixture
def artifacts_dir() -> str:
    path = os.path.join(os.path.dirname(__file__), "test-artifacts")
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture(autouse=True)
def _public_schema_between_tests():
    """Requests switch the connection's schema; never let one test start in another's tenant."""
    yield
    with contextlib.suppress(Exception):
        connection.set_schema_to_public()


# --- Browser tests: Debian's headless Chromium driven by Playwright against the live server. ---
# One Playwright instance per session (two sync instances cannot share a thread). Tests get
# ``page`` (a fresh context) and ``shot(name)`` for screenshots under test-artifacts/.
# Playwright's sync API runs an event loop in this thread; the ORM calls of tests stay sync.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
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
