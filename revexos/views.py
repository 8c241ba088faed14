from __future__ import annotations

from django.shortcuts import render

from revexos.accounts.decorators import requires
from revexos.accounts.models import Role
from revexos.accounts.roles import has_capability

# What each role's home shows first.
HOME_PANELS = {
    Role.ADMIN: ["setup", "finance", "renewals", "team"],
    Role.FINANCE: ["finance", "renewals"],
    Role.ACCOUNT_MANAGER: ["renewals", "accounts"],
    Role.VIEWER: ["finance"],
}
HOME_FORECAST_MONTHS = 6


@requires("dashboard.view")
def home(request):
    from revexos.accounts.models import ApiKey, User
    from revexos.dates import tenant_today

    panels = HOME_PANELS.get(request.user.role, ["finance"])
    context = {"panels": panels, "today": tenant_today()}
    if "setup" in panels:
        context["user_count"] = User.objects.filter(is_active=True).count()
        context["api_key_count"] = ApiKey.objects.filter(revoked_at__isnull=True).count()
    if "renewals" in panels:
        from renewals.selectors import renewal_home_summary

        context["renewals"] = renewal_home_summary(user=request.user)  # one grouped query
    if "finance" in panels and has_capability(request.user, "insights.view"):
        from billing.selectors import billing_home_summary
        from insights.selectors import finance_home

        context["billing"] = billing_home_summary(today=context["today"])  # three grouped queries
        context.update(
            finance_home(today=context["today"], months=HOME_FORECAST_MONTHS, refresh="refresh" in request.GET)
        )
    if "finance" in panels and has_capability(request.user, "payments.view"):
        from receivables.selectors import collections_home

        context["collections"] = collections_home(today=context["today"])
    if "accounts" in panels and has_capability(request.user, "insights.view"):
        from insights.selectors import account_manager_home

        context.update(account_manager_home(today=context["today"], user=request.user))
    return render(request, "home.html", context)


def favicon(request):
    """Browsers ask for /favicon.ico on every page whatever the <link rel="icon"> says."""
    from django.http import HttpResponsePermanentRedirect
    from django.templatetags.static import static

    # Resolved per request: the manifest storage of production knows the hashed name only after
    # collectstatic, which must not be needed to import the URL conf.
    return HttpResponsePermanentRedirect(static("favicon.svg"))
