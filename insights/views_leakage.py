"""Leakage pages: findings with filters and totals by rule, a finding's evidence, the decisions on it.

Logic lives in ``insights/services/leakage.py``; these views translate HTTP. Everyone who can see
insights reads the findings; finance and admins (``leakage.manage``) act on them and scan on demand.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from insights.evidence import finding_evidence
from insights.leakage import RULE_DEFINITIONS
from insights.models import FindingStatus, LeakageFinding, LeakageRule
from insights.selectors_leakage import (
    leakage_finding_detail,
    leakage_finding_list,
    leakage_grand_totals,
    leakage_totals_by_rule,
)
from revexos.accounts.decorators import requires
from revexos.accounts.roles import has_capability

PAGE_SIZE = 25
STATUS_CHOICES = [("live", "Open & acknowledged"), *FindingStatus.choices, ("", "Any status")]


def _filters(request) -> dict[str, str]:
    rule = request.GET.get("rule", "").upper()
    status = request.GET.get("status", "live") if "status" in request.GET else "live"
    return {
        "rule": rule if rule in LeakageRule.values else "",
        "status": status if status in dict(STATUS_CHOICES) else "live",
        "contract": request.GET.get("contract", "").strip()[:50],
    }


@requires("insights.view")
def finding_list(request):
    filters = _filters(request)
    findings = leakage_finding_list(**filters)
    page = Paginator(findings, PAGE_SIZE).get_page(request.GET.get("page"))
    totals = leakage_totals_by_rule(status=filters["status"], contract=filters["contract"])
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filters": filters,
        "page": page,
        "findings": page.object_list,
        "totals": totals,
        "grand_totals": leakage_grand_totals(totals),
        "rules": RULE_DEFINITIONS,
        "rule_choices": LeakageRule.choices,
        "status_choices": STATUS_CHOICES,
        "query": query.urlencode(),
        "can_act": has_capability(request.user, "leakage.manage"),
    }
    template = (
        "insights/leakage_list.html#finding-table"
        if request.htmx and request.htmx.target == "finding-table"
        else "insights/leakage_list.html"
    )
    return render(request, template, context)


@requires("insights.view")
def rule_definitions(request):
    return render(request, "insights/leakage_rules.html", {"rules": RULE_DEFINITIONS})


def _detail_context(request, finding: LeakageFinding, **extra) -> dict:
    return {
        "finding": finding,
        "rule": RULE_DEFINITIONS[finding.rule],
        "evidence": finding_evidence(finding),
        "more_rows": (finding.evidence or {}).get("more_rows", 0),
        "can_act": has_capability(request.user, "leakage.manage"),
        **extra,
    }


def _get(finding_id: int) -> LeakageFinding:
    try:
        return leakage_finding_detail(pk=finding_id)
    except LeakageFinding.DoesNotExist:
        raise Http404("No such leakage finding.") from None


@requires("insights.view")
def finding_detail(request, finding_id: int):
    return render(request, "insights/leakage_detail.html", _detail_context(request, _get(finding_id)))


def _act(request, finding_id: int, action, saved: str):
    _get(finding_id)
    error = ""
    try:
        action()
    except ValidationError as exc:
        error = (
            " ".join(m for msgs in exc.message_dict.values() for m in msgs)
            if hasattr(exc, "message_dict")
            else " ".join(exc.messages)
        )
    finding = _get(finding_id)
    if request.htmx:
        return render(
            request,
            "insights/leakage_detail.html#finding-status",
            _detail_context(request, finding, error=error, saved="" if error else saved),
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, saved)
    return redirect(reverse("leakage:detail", args=[finding_id]))


@require_POST
@requires("leakage.manage")
def finding_acknowledge(request, finding_id: int):
    from insights.services.leakage import leakage_finding_acknowledge

    return _act(
        request,
        finding_id,
        lambda: leakage_finding_acknowledge(
            finding_id=finding_id, user=request.user, note=request.POST.get("note", "")
        ),
        "Acknowledged",
    )


@require_POST
@requires("leakage.manage")
def finding_resolve(request, finding_id: int):
    from insights.services.leakage import leakage_finding_resolve

    return _act(
        request,
        finding_id,
        lambda: leakage_finding_resolve(finding_id=finding_id, user=request.user, note=request.POST.get("note", "")),
        "Resolved",
    )


@require_POST
@requires("leakage.manage")
def finding_dismiss(request, finding_id: int):
    from insights.services.leakage import leakage_finding_dismiss

    return _act(
        request,
        finding_id,
        lambda: leakage_finding_dismiss(
            finding_id=finding_id, user=request.user, reason=request.POST.get("reason", "")
        ),
        "Dismissed",
    )


@require_POST
@requires("leakage.manage")
def scan_now(request):
    from insights.services.leakage import leakage_scan

    result = leakage_scan()
    messages.success(
        request,
        f"Scan as of {result.as_of:%-d %b %Y}: {result.found} finding{'s' if result.found != 1 else ''} "
        f"({result.created} new, {result.resolved} resolved, {result.reopened} reopened).",
    )
    return redirect(reverse("leakage:list"))
