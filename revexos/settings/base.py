"""RevExOS settings shared by every environment.

Everything that differs between machines comes from the environment (DESIGN.md §7). When
``DATABASE_URL`` / ``REDIS_URL`` are unset, ``revexos.embedded`` has already started PostgreSQL and
Redis from Python wheels and exported their URLs before Django is configured.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url

from .env import env_bool, env_list, env_str, mailer_settings

BASE_DIR = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = env_str("SECRET_KEY", "dev-insecure-3b1f6e0c9a2d4e7f8a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d")
DEBUG = env_bool("DEBUG", True)
# The Domain table is the real allow-list: django-tenants answers 404 for any host it does not
# route, and tenants may bring their own domains, so Django's own check stays open by default.
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "*")

# Tenants live on <slug>.<TENANT_BASE_DOMAIN>; the public site (landing, sign-up) on the bare domain.
TENANT_BASE_DOMAIN = env_str("TENANT_BASE_DOMAIN", "localhost")
TENANT_URL_PORT = env_str("TENANT_URL_PORT", "8000")  # only used to build links in development
# Links in e-mails and PDFs (pay links): "https" in production, "http" when DEBUG; set to override.
TENANT_URL_SCHEME = env_str("TENANT_URL_SCHEME", "")

SHARED_APPS = [
    "django_tenants",
    "revexos.tenancy",
    "revexos.accounts",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_htmx",
    "ninja",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.admin",
    "revexos.accounts",
    "axes",
    "simple_history",
    "contracts",
    "billing",
    "discounts",
    "renewals",
    "insights",
    "integrations",
    "receivables",
    "revexos.webhooks",
    "audits",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenancy.Tenant"
TENANT_DOMAIN_MODEL = "tenancy.Domain"
PUBLIC_SCHEMA_URLCONF = "revexos.urls_public"
ROOT_URLCONF = "revexos.urls"
# An unknown host gets a 404, never the public site or another tenant.
SHOW_PUBLIC_IF_NO_TENANT_FOUND = False
# Set the search_path once per tenant switch, not before every query (half the round-trips otherwise).
TENANT_LIMIT_SET_CALLS = True

AUTH_USER_MODEL = "accounts.User"

MIDDLEWARE = [
    # django-tenants' host → schema routing, matching host names case-insensitively.
    "revexos.tenancy.middleware.TenantMiddleware",
    # Body size, content type, JSON depth, NUL characters and the JSON error shape for /api/v1/;
    # NUL characters for the UI (revexos/request_guards.py).
    "revexos.request_guards.ApiGuardMiddleware",
    "revexos.request_guards.InputGuardMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "revexos.accounts.middleware.TenantSessionGuardMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "revexos.logs.RequestContextMiddleware",
    # Axes last: it turns a lockout raised during authentication into its response.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "revexos.context_processors.shell",
            ],
        },
    }
]

WSGI_APPLICATION = "revexos.wsgi.application"

DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/revexos")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # Every cache key starts with the tenant's schema name, so tenants never share entries.
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "rvx"),
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env_list("PASSWORD_HASHERS") or [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Brute-force protection: five failures for one user from one address lock that pair out for
# 15 minutes. Attempts are stored per tenant schema.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "revexos.accounts.throttling.axes_username"
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_ENABLED = env_bool("AXES_ENABLED", True)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG  # development serves static/ directly, no collectstatic needed
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
MEDIA_URL = "/media/"
STORAGES = {
    # Tenant files are written under MEDIA_ROOT/<schema_name>/ by django-tenants' storage.
    "default": {"BACKEND": "django_tenants.files.storage.TenantFileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"

MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

SESSION_COOKIE_NAME = "rvx_session"
CSRF_COOKIE_NAME = "rvx_csrftoken"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

MAILERS = {"default": mailer_settings(env_str("EMAIL_URL", "console://"))}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "RevExOS <billing@revexos.localhost>")

# Celery: Redis broker; results only for runs and diagnostics. Kombu spells Unix sockets differently.
_celery_redis = REDIS_URL.replace("unix://", "redis+socket://", 1) if REDIS_URL.startswith("unix://") else REDIS_URL
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", _celery_redis)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", _celery_redis)
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = False  # opted into per task, only where the task is idempotent
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_TENANT_CACHE_SECONDS = 30
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "revexos")
# Billing runs, invoice delivery and integrations each have their own queue (revexos/celery.py routes
# them): a rerun never waits behind hundreds of PDF and e-mail tasks.
CELERY_TASK_ROUTES = ("revexos.celery.task_route",)
# Enqueueing never holds a request: a short connect timeout, and after a failure the broker is not
# tried again for a while (stored facts, runs and e-mails are swept up when it is back).
CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, "socket_connect_timeout": 1}
ENQUEUE_PAUSE_AFTER_FAILURE_SECONDS = int(env_str("ENQUEUE_PAUSE_AFTER_FAILURE_SECONDS", "30"))

# Billing runs (billing/services/runs.py).
BILLING_CHUNK_SIZE = int(env_str("BILLING_CHUNK_SIZE", "500"))  # contracts per transaction of a run
BILLING_RUN_LEASE_SECONDS = int(env_str("BILLING_RUN_LEASE_SECONDS", "120"))  # silence before a run is taken over
BILLING_RUN_POLL_SECONDS = float(env_str("BILLING_RUN_POLL_SECONDS", "0.5"))
BILLING_RUN_QUEUED_GRACE_SECONDS = int(env_str("BILLING_RUN_QUEUED_GRACE_SECONDS", "60"))
BILLING_RUN_HELPERS = int(env_str("BILLING_RUN_HELPERS", "3"))  # tasks that share an async run's chunks
# A synchronous POST /runs evaluates at most this many contracts (larger: "async": true).
BILLING_RUN_SYNC_MAX_CONTRACTS = int(env_str("BILLING_RUN_SYNC_MAX_CONTRACTS", "2000"))
# New lines per price line in one evaluation: 10 years of monthly periods (more catches up next run).
BILLING_CATCH_UP_MAX_LINES = int(env_str("BILLING_CATCH_UP_MAX_LINES", "120"))

NINJA_PAGINATION_PER_PAGE = 50
# API request bodies (revexos/request_guards.py): a 1,000-event usage batch with 4 KB of properties
# per event is about 4.5 MB; uploads (CSV exports of other systems) may be larger. Deeper JSON is refused.
API_MAX_BODY_BYTES = int(env_str("API_MAX_BODY_BYTES", str(10 * 1024 * 1024)))
API_MAX_UPLOAD_BYTES = int(env_str("API_MAX_UPLOAD_BYTES", str(25 * 1024 * 1024)))
API_MAX_JSON_DEPTH = 32

# The Q2C audit: how long a prospect's sandbox, uploads and findings are kept, upload limits.
AUDIT_RETENTION_DAYS = int(env_str("AUDIT_RETENTION_DAYS", "30"))
AUDIT_MAX_FILE_BYTES = int(env_str("AUDIT_MAX_FILE_BYTES", str(10 * 1024 * 1024)))
AUDIT_SHARE_LINK_DAYS = int(env_str("AUDIT_SHARE_LINK_DAYS", "14"))

STRIPE_API_KEY = env_str("STRIPE_API_KEY")
STRIPE_API_BASE = env_str("STRIPE_API_BASE")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")

LOG_FORMAT = env_str("LOG_FORMAT", "text")  # "json" for structured logs
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "revexos.logs.ContextFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(tenant)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(tenant)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT if LOG_FORMAT in {"text", "json"} else "text",
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # WeasyPrint logs every layout step of every PDF at INFO; only its warnings matter.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# Outbound webhooks may call private and loopback addresses only outside production (local receivers,
# tests); production settings refuse them (SSRF).
WEBHOOKS_ALLOW_PRIVATE_URLS = True
