"""The home page: each role's first screen, gathered from the modules' summaries.

It lives in insights (the dashboards), above every module whose summary it shows: billing's drafts
and held invoices, renewals' queue, collections' figures and the insights themselves.
"""

from __future__ import annotations

from django.shortcuts import render

from billing.selectors import billing_home_summary
from insights.selectors import account_manager_home, finance_home
from receivables.selectors import collections_home
from renewals.selectors import renewal_home_summary
from revexos.accounts.decorators import requires
from revexos.accounts.models import ApiKey, Role, User
from revexos.accounts.roles import has_capability
from revexos.dates import tenant_today

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
    panels = HOME_PANELS.get(request.user.role, ["finance"])
    context = {"panels": panels, "today": tenant_today()}
    if "setup" in panels:
        context["user_count"] = User.objects.filter(is_active=True).count()
        context["api_key_count"] = ApiKey.objects.filter(revoked_at__isnull=True).count()
    if "renewals" in panels:
        context["renewals"] = renewal_home_summary(user=request.user)  # one grouped query
    if "finance" in panels and has_capability(request.user, "insights.view"):
        context["billing"] = billing_home_summary(today=context["today"])  # three grouped queries
        context.update(finance_home(today=context["today"], months=HOME_FORECAST_MONTHS))
    if "finance" in panels and has_capability(request.user, "payments.view"):
        context["collections"] = collections_home(today=context["today"])
    if "accounts" in panels and has_capability(request.user, "insights.view"):
        context.update(account_manager_home(today=context["today"], user=request.user))
    return render(request, "home.html", context)
