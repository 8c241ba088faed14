"""Use cases for users and API keys (writes). Each runs in the current tenant's schema."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from revexos.accounts.models import ApiKey, Role, User

API_KEY_PREFIX = "rvx_"


def user_create(*, email: str, password: str | None = None, role: str = Role.VIEWER, full_name: str = "") -> User:
    email = email.strip().lower()
    if role not in Role.values:
        raise ValidationError({"role": [f"Unknown role {role!r}; choose one of {', '.join(Role.values)}."]})
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": [f"A user with the e-mail {email} already exists."]})
    # Tenant admins also get Django's admin site, the second door to every model of their tenant.
    is_admin = role == Role.ADMIN
    user = User.objects.create_user(
        email=email, password=password, role=role, full_name=full_name, is_staff=is_admin, is_superuser=is_admin
    )
    if password is None:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def user_update(*, user: User, role: str, is_active: bool, full_name: str, acting_user: User) -> User:
    if user.pk == acting_user.pk and (role != Role.ADMIN or not is_active):
        raise ValidationError({"role": ["You cannot remove your own admin role or deactivate yourself."]})
    user.role, user.is_active, user.full_name = role, is_active, full_name
    user.is_staff = user.is_superuser = role == Role.ADMIN
    user.save(update_fields=["role", "is_active", "full_name", "is_staff", "is_superuser"])
    return user


@dataclass(frozen=True)
class IssuedApiKey:
    key: ApiKey
    secret: str  # shown once, never stored


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(*, name: str, created_by: User | None) -> IssuedApiKey:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ["Give the key a name, e.g. the system that will use it."]})
    prefix = secrets.token_hex(6)
    secret = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(name=name[:100], prefix=prefix, digest=_digest(secret), created_by=created_by)
    return IssuedApiKey(key=key, secret=secret)


def api_key_revoke(*, key_id: int) -> ApiKey:
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().get(pk=key_id)
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
    return key


def api_key_authenticate(secret: str) -> ApiKey | None:
    """The active key for ``secret`` in the current tenant's schema, or None."""
    if not secret or not secret.startswith(API_KEY_PREFIX):
        return None
    key = ApiKey.objects.filter(digest=_digest(secret), revoked_at__isnull=True).first()
    if key is None:
        return None
    now = timezone.now()
    # Touch at most once a minute so busy integrations do not write on every request.
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key
