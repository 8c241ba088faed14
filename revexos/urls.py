"""URLs served on a tenant's host (``<slug>.localhost``).

Part of the project's composition root (with ``revexos/api.py``): it mounts every module's pages,
so it may name modules above ``revexos`` (tests/test_layers.py lists these modules).
"""

from django.contrib import admin
from django.urls import include, path

from insights.views_home import home
from revexos.api import api
from revexos.tenancy import views_settings
from revexos.views import favicon
from revexos.views_search import search_page

admin.site.site_header = "RevExOS administration"
admin.site.site_title = "RevExOS admin"

urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("", home, name="home"),
    path("search/", search_page, name="search"),
    path("accounts/", include("revexos.accounts.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("settings/workspace/", views_settings.workspace_settings, name="workspace_settings"),
    path("settings/workspace/logo/", views_settings.workspace_logo, name="workspace_logo"),
    # Public on purpose: the pay page (token in the URL) and /webhooks/stripe/ (signed by Stripe).
    # Listed before any generic /webhooks/<source>/ route so Stripe's own handler answers.
    path("", include("receivables.urls_pay")),
    path("", include("contracts.urls")),
    path("renewals/", include("renewals.urls")),
    path("billing/", include("billing.urls")),
    path("discounts/", include("billing.urls_exceptions")),
    path("insights/leakage/", include("insights.urls_leakage")),
    path("insights/", include("insights.urls")),
    path("integrations/", include("integrations.urls")),
    # Webhooks: each app contributes its own patterns under webhooks/ (signed by the source, no session).
    path("webhooks/", include("integrations.webhooks")),
    path("collections/", include("receivables.urls")),
    path("settings/webhooks/", include("revexos.webhooks.urls")),
    path("audits/", include("audits.urls")),
]
