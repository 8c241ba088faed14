from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render

from revexos.accounts.decorators import requires
from revexos.tenancy.forms_settings import WorkspaceSettingsForm
from revexos.tenancy.services.settings import EDITABLE, tenant_settings_update


@requires("settings.manage")
def workspace_settings(request):
    tenant = request.tenant
    form = WorkspaceSettingsForm(request.POST or None, request.FILES or None, instance=tenant)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            new_logo = request.FILES.get("invoice_logo")
            try:
                tenant_settings_update(
                    tenant=tenant,
                    data={name: form.cleaned_data[name] for name in EDITABLE},
                    logo=new_logo,
                    clear_logo=form.cleaned_data["clear_logo"] and not new_logo,
                )
            except ValidationError as exc:
                for field, problems in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, problems)
            else:
                messages.success(request, "Workspace settings were saved. New invoices use them from now on.")
                return redirect("workspace_settings")
        status = 400
        tenant.refresh_from_db()  # the form changed the instance in memory; show what is stored
    return render(request, "tenancy/workspace_settings.html", {"form": form, "tenant": tenant}, status=status)


@requires("dashboard.view")
def workspace_logo(request):
    """The invoice logo from the tenant's own file storage (media files are not served directly)."""
    from django.core.files.storage import default_storage
    from django.http import Http404, HttpResponse

    logo = request.tenant.invoice_logo
    if not logo:
        raise Http404("No logo")
    try:
        with default_storage.open(logo.name, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise Http404("No logo") from exc
    kind = "image/jpeg" if data[:3] == b"\xff\xd8\xff" else "image/png"
    response = HttpResponse(data, content_type=kind)
    response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response
