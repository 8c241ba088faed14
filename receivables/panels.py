"""The Payments card on billing's invoice page (registered in billing.hooks)."""

from __future__ import annotations

from django.template.loader import render_to_string

from receivables.models import Allocation, PaymentAttempt, WriteOff


def invoice_payments_panel(*, request, invoice) -> str:
    from revexos.accounts.roles import has_capability

    if invoice.status == "draft":
        return ""
    from receivables.services.paylinks import invoice_pay_url

    allocations = list(
        Allocation.objects.filter(invoice=invoice).select_related("payment", "refund").order_by("applied_on", "id")
    )
    context = {
        "invoice": invoice,
        "allocations": allocations,
        "write_offs": list(WriteOff.objects.filter(invoice=invoice).order_by("written_on", "id")),
        "attempts": list(PaymentAttempt.objects.filter(invoice=invoice).order_by("-created_at")[:5]),
        "notices": list(invoice.dunning_notices.select_related("step").order_by("sent_on")),
        "pay_url": invoice_pay_url(invoice),
        "can_collect": has_capability(request.user, "payments.manage"),
    }
    return render_to_string("receivables/_invoice_payments.html", context, request=request)
