from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from revexos.tenancy.forms import SignupForm
from revexos.tenancy.services.provisioning import tenant_provision


def landing(request):
    return render(request, "public/landing.html", {"form": SignupForm(base_domain=settings.TENANT_BASE_DOMAIN)})


@require_http_methods(["GET", "POST"])
def signup(request):
    form = SignupForm(request.POST or None, base_domain=settings.TENANT_BASE_DOMAIN)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            provisioned = tenant_provision(
                slug=data["slug"],
                name=data["company_name"],
                admin_email=data["admin_email"],
                admin_password=data["password"],
            )
        except ValidationError as exc:  # lost a race for the slug between validation and creation
            for field, problems in exc.message_dict.items():
                form.add_error("slug" if field in {"slug", "domain"} else None, problems)
        else:
            port = request.get_port()
            host = provisioned.domain if port in {"80", "443"} else f"{provisioned.domain}:{port}"
            scheme = "https" if request.is_secure() else "http"
            query = urlencode({"email": provisioned.admin_email, "welcome": "1"})
            return redirect(f"{scheme}://{host}/accounts/login/?{query}")
    return render(request, "public/landing.html", {"form": form}, status=400 if request.method == "POST" else 200)
