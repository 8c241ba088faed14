from __future__ import annotations

from django.contrib.auth import logout
from django.db import connection

SESSION_SCHEMA_KEY = "_tenant_schema"


class TenantSessionGuardMiddleware:
    """Bind a signed-in session to the schema it was created in.

    Sessions already live in each tenant's own schema; this is a second lock so that a session
    can never authenticate a request routed to another tenant, whatever the storage backend.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            bound = request.session.get(SESSION_SCHEMA_KEY)
            if bound is None:
                request.session[SESSION_SCHEMA_KEY] = connection.schema_name
            elif bound != connection.schema_name:
                logout(request)
        return self.get_response(request)
