"""Host name → tenant, as django-tenants does it, but matching the host case-insensitively.

Host names are case-insensitive (RFC 4343): ``Demo.LOCALHOST`` and ``demo.localhost.`` (a fully
qualified name with its final dot) are the same host, so they reach the same tenant. Domains are
stored in lowercase by provisioning.
"""

from __future__ import annotations

from django.http.request import split_domain_port
from django_tenants.middleware.main import TenantMainMiddleware
from django_tenants.utils import remove_www


class TenantMiddleware(TenantMainMiddleware):
    @staticmethod
    def hostname_from_request(request):
        # split_domain_port lowercases the name and drops a final dot and the port.
        domain, _port = split_domain_port(request.get_host())
        return remove_www(domain)
