"""Brute-force protection (django-axes) keyed by the e-mail people sign in with."""

from __future__ import annotations


def axes_username(request, credentials) -> str | None:
    # Django authenticates with USERNAME_FIELD ("email") as the keyword; the login form posts "username".
    value = None
    if credentials:
        value = credentials.get("email") or credentials.get("username")
    if not value and request is not None:
        value = request.POST.get("username") or request.POST.get("email")
    return value.strip().lower() if value else None
