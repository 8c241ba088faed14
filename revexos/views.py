from __future__ import annotations

from django.shortcuts import render

from revexos.accounts.decorators import requires
from revexos.accounts.models import Role

# What each role's home shows first. Later modules fill each panel with live figures.
HOME_PANELS = {
    Role.ADMIN: ["setup", "finance", "renewals", "team"],
    Role.FINANCE: ["finance", "renewals"],
    Role.ACCOUNT_MANAGER: ["renewals", "accounts"],
    Role.VIEWER: ["finance"],
}


@requires("dashboard.view")
def home(request):
    from revexos.accounts.models import ApiKey, User

    context = {
        "panels": HOME_PANELS.get(request.user.role, ["finance"]),
        "user_count": User.objects.filter(is_active=True).count(),
        "api_key_count": ApiKey.objects.filter(revoked_at__isnull=True).count(),
    }
    if "renewals" in context["panels"]:
        from renewals.selectors import renewal_home_summary

        context["renewals"] = renewal_home_summary(user=request.user)  # one grouped query
    if "finance" in context["panels"]:
        from billing.selectors import billing_home_summary

        context["billing"] = billing_home_summary()  # three grouped queries
    return render(request, "home.html", context)
