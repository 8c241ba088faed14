from __future__ import annotations

from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static


def favicon(request):
    """Browsers ask for /favicon.ico on every page whatever the <link rel="icon"> says."""
    # Resolved per request: the manifest storage of production knows the hashed name only after
    # collectstatic, which must not be needed to import the URL conf.
    return HttpResponsePermanentRedirect(static("favicon.svg"))
