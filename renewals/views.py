"""The renewal queue (htmx), inline decisions, and finance's view by quarter."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_POST

from renewals.forms import DecisionForm, QueueFilterForm
from renewals.models import RenewalAlert
from renewals.selectors import (
    can_see_all,
    queue_owner_scope,
    renewal_alert_for_row,
    renewal_owner_choices,
    renewal_quarter_choices,
    renewal_queue,
    renewal_totals,
    renewals_by_quarter,
)
from renewals.services._common import tenant_today
from renewals.services.decisions import renewal_alert_check_access, renewal_decide
from revexos.accounts.decorators import requires
from revexos.accounts.roles import has_capability

# The contract page, when the contracts app provides one (its URL name is looked up once).
_CONTRACT_URL_NAMES = ("contracts:contract_detail", "contracts:detail")


def _contract_url_name() -> str | None:
    for name in _CONTRACT_URL_NAMES:
        try:
            reverse(name, args=[1])
        except NoReverseMatch:
            continue
        return name
    return None


def _row_context(request, alert: RenewalAlert, **extra) -> dict:
    return {
        "alert": alert,
        "can_decide_any": has_capability(request.user, "renewals.decide"),
        "today": tenant_today(),
        "show_owner": can_see_all(request.user),
        "contract_url_name": _contract_url_name(),
        **extra,
    }


@requires("renewals.view")
def queue(request):
    params = request.GET
    show_owner = can_see_all(request.user)
    # Account managers see their own book; admins and finance see everyone's unless they narrow it.
    owner = queue_owner_scope(user=request.user, owner=params.get("owner", "all"))
    status = params.get("status") or "action"
    quarter = params.get("quarter", "")
    form = QueueFilterForm(
        {"status": status, "owner": owner, "quarter": quarter},
        owners=renewal_owner_choices() if show_owner else [],
        quarters=renewal_quarter_choices(),
        show_owner=show_owner,
    )
    alerts = renewal_queue(user=request.user, status=status, owner=owner, quarter=quarter)
    context = {
        "form": form,
        "alerts": alerts,
        "totals": renewal_totals(alerts),
        "today": tenant_today(),
        "show_owner": show_owner,
        "owner_scope": owner,
        "status": status,
        "can_decide_any": has_capability(request.user, "renewals.decide"),
        "contract_url_name": _contract_url_name(),
        "decision_form": DecisionForm(),
    }
    template = "renewals/queue.html#queue" if request.htmx else "renewals/queue.html"
    return render(request, template, context)


@require_POST
@requires("renewals.decide")
def decide(request, pk: int):
    alert = get_object_or_404(RenewalAlert.objects.select_related("contract"), pk=pk)
    renewal_alert_check_access(alert=alert, user=request.user)
    form = DecisionForm(request.POST)
    errors: dict[str, list[str]] = {}
    if form.is_valid():
        try:
            renewal_decide(
                alert=alert,
                decision=form.cleaned_data["decision"],
                note=form.cleaned_data["note"],
                user=request.user,
                proposed_terms=form.proposed_terms(),
                snooze_until=form.cleaned_data["snooze_until"],
            )
        except ValidationError as exc:
            errors = exc.message_dict
    else:
        errors = {name: [str(e) for e in errs] for name, errs in form.errors.items()}
    alert = renewal_alert_for_row(pk=pk)
    context = _row_context(
        request,
        alert,
        errors=errors,
        posted=request.POST if errors else None,
        recorded=None if errors else alert.get_status_display(),
    )
    if request.htmx:
        # 200 with the errors in the row: htmx only swaps successful responses.
        return render(request, "renewals/queue.html#alert-row", context)
    if errors:
        return render(request, "renewals/decision_page.html", context, status=422)
    response = HttpResponse(status=303)
    response["Location"] = reverse("renewals:queue")
    return response


@requires("renewals.view")
def by_quarter(request):
    owner = queue_owner_scope(user=request.user, owner=request.GET.get("owner", "all"))
    today = tenant_today()
    rows = renewals_by_quarter(user=request.user, owner=owner, start=today, quarters=4)
    return render(
        request,
        "renewals/quarters.html",
        {"rows": rows, "owner_scope": owner, "show_owner": can_see_all(request.user), "today": today},
    )
