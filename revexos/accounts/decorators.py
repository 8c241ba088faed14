from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from revexos.accounts.roles import has_capability


def requires(capability: str):
    """Anonymous users go to the login page; signed-in users without the capability get 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not has_capability(request.user, capability):
                raise PermissionDenied(f"Your role does not allow {capability}.")
            return view(request, *args, **kwargs)

        wrapped.capability = capability
        return wrapped

    return decorator


class CapabilityRequiredMixin:
    """Class-based views: set ``capability``; same rules as :func:`requires`."""

    capability: str = ""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not has_capability(request.user, self.capability):
            raise PermissionDenied(f"Your role does not allow {self.capability}.")
        return super().dispatch(request, *args, **kwargs)
