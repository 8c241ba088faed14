"""Rules for tenant slugs, which become host names and PostgreSQL schema names."""

from __future__ import annotations

import re

SLUG_RE = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
MIN_LENGTH = 3
MAX_LENGTH = 32

# Names that would collide with platform hosts, PostgreSQL schemas or look like us.
RESERVED = frozenset(
    {
        "public",
        "www",
        "api",
        "app",
        "admin",
        "administrator",
        "root",
        "mail",
        "smtp",
        "imap",
        "static",
        "media",
        "assets",
        "cdn",
        "docs",
        "help",
        "support",
        "status",
        "billing",
        "blog",
        "dev",
        "staging",
        "test",
        "demo-template",
        "signup",
        "login",
        "auth",
        "account",
        "accounts",
        "revexos",
        "system",
        "information-schema",
        "postgres",
        "template",
        "localhost",
        "webhooks",
        "internal",
        "security",
    }
)


def slug_problems(slug: str) -> list[str]:
    """Return the reasons ``slug`` cannot be used, in words a person can act on."""
    problems = []
    if not MIN_LENGTH <= len(slug) <= MAX_LENGTH:
        problems.append(f"Use between {MIN_LENGTH} and {MAX_LENGTH} characters.")
    if not SLUG_RE.match(slug) or "--" in slug:
        problems.append(
            "Use lowercase letters, digits and single hyphens; start with a letter and end with a letter or digit."
        )
    # "sbx-" names audit sandboxes (revexos.tenancy.services.provisioning.SANDBOX_PREFIX).
    if slug in RESERVED or slug.startswith(("pg-", "pg_", "sbx-")):
        problems.append(f"“{slug}” is reserved; choose another name.")
    return problems


def schema_name_for(slug: str) -> str:
    # Slugs never contain underscores, so this mapping is one-to-one.
    return slug.replace("-", "_")
