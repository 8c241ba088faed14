"""Shared test fixtures: two committed tenants (A and B), role users, API keys, a live server.

Tenants are created once per session and committed, so a live server thread and a real Celery
worker can see them. Tests that only need the ORM use the ``db`` fixture (rolled back after each
test); tests that need committed data use ``committed_db`` and create uniquely named rows.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from revexos.accounts.models import Role

PASSWORD = "correct-horse-battery-9"


def pytest_configure(config):
    from django.conf import settings

    # Hashing strength is not under test; PBKDF2 would make every login in the suite slow.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    _isolate_xdist_worker(settings)


# --- Parallel runs (pytest-xdist, ``-n 2``): each worker process is a suite of its own. ---
# Its test database gets pytest-django's suffix (test_<name>_gw0, _gw1: see django_db_setup), its Redis
# (cache, broker, results) the next database number after REDIS_URL's (gw0 keeps REDIS_URL's own), its
# files a folder of its own under MEDIA_ROOT. Live servers, SMTP sinks and Stripe stand-ins already
# take free ports; tenant hosts are rows of the worker's own database. Celery worker subprocesses
# inherit the worker's environment, so they use the same database number and folder.
def xdist_worker_number() -> int | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # "gw0", "gw1", … in an xdist worker process
    return int(worker.removeprefix("gw")) if worker else None


def _redis_url_for_worker(url: str, number: int) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":  # the embedded Redis: unix:///path/redis.sock?db=0
        query = dict(parse_qsl(parts.query))
        query["db"] = str((int(query.get("db", 0)) + number) % 16)
        # Written out: urlunsplit drops the empty host's "//" ("unix:/path"), which redis-py refuses.
        return f"unix://{parts.path}?{urlencode(query)}"
    base = int(parts.path.lstrip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(base + number) % 16}"))


def _isolate_xdist_worker(settings) -> None:
    number = xdist_worker_number()
    if number is None:
        return
    settings.MEDIA_ROOT = Path(settings.MEDIA_ROOT) / f"gw{number}"
    os.environ["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    if number == 0:
        return
    from revexos.celery import app

    old, new = settings.REDIS_URL, _redis_url_for_worker(settings.REDIS_URL, number)
    kombu = {old.replace("unix://", "redis+socket://", 1): new.replace("unix://", "redis+socket://", 1)}
    settings.REDIS_URL = new
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": new}}
    # Broker and results follow REDIS_URL unless they were set on their own.
    for name, key in (("CELERY_BROKER_URL", "broker_url"), ("CELERY_RESULT_BACKEND", "result_backend")):
        if getattr(settings, name) in kombu:
            setattr(settings, name, kombu[getattr(settings, name)])
            app.conf[key] = getattr(settings, name)
    os.environ["REDIS_URL"] = new


def pytest_xdist_make_scheduler(config, log):
    """Tests are handed to the workers one by one in collection order (pytest-django's: rolled-back
    tests, then transactional ones, then the rest), so each worker runs them in the order of a serial
    run. A module with module-scoped fixtures goes to one worker whole: its tests read what the
    module's earlier tests left (the Fabrikam audit is processed once, and purged by one test before
    the next checks that none is left)."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleFixturesTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if _has_module_fixtures(module) else nodeid

    config.option.loadscopereorder = False  # units in collection order, not largest first
    return ModuleFixturesTogether(config, log)


@functools.cache
def _has_module_fixtures(module: str) -> bool:
    return 'scope="module"' in (Path(__file__).resolve().parent / module).read_text()


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


# --- The test database starts as a copy of a migrated one. ---
# Migrating a new database (the public schema, then the tenant template) takes a minute or more; copying
# a migrated one (CREATE DATABASE … TEMPLATE) takes seconds. The migrated database is built once per
# fingerprint of what migrating depends on and kept between runs (test_<name>_migrated_<fingerprint>;
# a new fingerprint replaces the old copy), so parallel workers and later runs only copy it. The usual
# migrate still runs on the copy (it finds nothing to do), so a missed input would show as slowness, not
# as a different schema.
_MIGRATED_LOCK = 0x7E4A_7E57  # pg_advisory_lock in the maintenance database: one builder at a time


def _migrations_fingerprint() -> str:
    """Every migration file of every app (site-packages ones too), the project's models and fields they
    import, the template clone, the app lists and the versions of Django and django-tenants."""
    import hashlib
    from importlib.metadata import version

    from django.apps import apps
    from django.conf import settings

    root = Path(__file__).resolve().parent
    digest = hashlib.sha256(
        repr((version("Django"), version("django-tenants"), settings.SHARED_APPS, settings.TENANT_APPS)).encode()
    )
    files = [root / "revexos" / "tenancy" / "services" / "template.py"]
    for app in apps.get_app_configs():
        path = Path(app.path)
        files += sorted((path / "migrations").glob("*.py"))
        if path.is_relative_to(root):
            files += [
                *sorted(path.glob("models.py")),
                *sorted(path.glob("models/*.py")),
                *sorted(path.glob("fields.py")),
            ]
    for file in files:
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:12]


def _test_db_from_migrated_copy() -> None:
    from django.core.management import call_command

    from revexos.tenancy.services.template import tenant_template_refresh

    quote = connection.ops.quote_name
    test_name = connection.creation._get_test_db_name()
    prefix = f"test_{connection.settings_dict['NAME']}_migrated_"
    migrated = prefix + _migrations_fingerprint()
    with connection._nodb_cursor() as admin:
        admin.execute("SELECT pg_advisory_lock(%s)", [_MIGRATED_LOCK])
        try:
            admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [migrated])
            if admin.fetchone() is None:
                admin.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE %s", [prefix.replace("_", r"\_") + "%"]
                )
                for (stale,) in admin.fetchall():
                    admin.execute(f"DROP DATABASE {quote(stale)} WITH (FORCE)")
                building = f"{migrated}_new"
                admin.execute(f"CREATE DATABASE {quote(building)}")
                name = connection.settings_dict["NAME"]
                connection.close()
                connection.settings_dict["NAME"] = building
                try:
                    call_command("migrate", verbosity=0, interactive=False, run_syncdb=True)
                    tenant_template_refresh()
                finally:
                    connection.close()
                    connection.settings_dict["NAME"] = name
                admin.execute(f"ALTER DATABASE {quote(building)} RENAME TO {quote(migrated)}")
            admin.execute(f"DROP DATABASE IF EXISTS {quote(test_name)} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {quote(test_name)} TEMPLATE {quote(migrated)}")
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", [_MIGRATED_LOCK])


@pytest.fixture(scope="session")
def django_db_setup(
    request,
    django_test_environment,
    django_db_blocker,
    django_db_keepdb,
    django_db_createdb,
    django_db_modify_db_settings,  # the _gw0/_gw1 suffix of an xdist worker's test database
):
    """The test database, always for ``default`` (pytest-django would skip it when no test is marked
    ``django_db``, but live-server and worker tests use committed data instead), plus tenants A and B."""
    from django.test.utils import setup_databases, teardown_databases

    keepdb = django_db_keepdb and not django_db_createdb
    with django_db_blocker.unblock():
        if not keepdb:
            _test_db_from_migrated_copy()
        # Kept, not created: the copy is the test database (migrate finds nothing to do). It is still
        # dropped at the end of the session (below).
        db_cfg = setup_databases(
            verbosity=0, interactive=False, aliases={"default"}, serialized_aliases=set(), keepdb=True
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
