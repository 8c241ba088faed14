"""Who changed a row and why, for django-simple-history (set on the instance before save)."""

from __future__ import annotations


def stamp(obj, *, user=None, note: str = ""):
    """Attach the acting user and a change note to ``obj``'s next history record."""
    if user is not None and getattr(user, "is_authenticated", False):
        obj._history_user = user
    if note:
        obj._change_reason = note[:100]
    return obj
