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


def customer_payments_panel(*, request, obj) -> str:
    """Payment history and balance on the customer page (registered in revexos.panels)."""
    from django.db.models import Q, Sum

    from billing.models import Invoice
    from receivables.models import DunningPause, Payment
    from receivables.selectors import customer_payment_behaviour
    from receivables.services.ledger import customer_unapplied
    from revexos.accounts.roles import has_capability
    from revexos.dates import tenant_today

    if not has_capability(request.user, "payments.view"):
        return ""
    today = tenant_today()
    balance = (
        Invoice.objects.filter(customer=obj, status__in=["issued", "sent", "partially_paid"], amount_open__gt=0)
        .values("currency")
        .annotate(open=Sum("amount_open"), overdue=Sum("amount_open", filter=Q(due_date__lt=today)))
        .order_by("currency")
    )
    context = {
        "customer": obj,
        "balance": list(balance),
        "unapplied": customer_unapplied(customer_id=obj.pk),
        "behaviour": customer_payment_behaviour(customer_id=obj.pk).get(obj.pk),
        "payments": list(
            Payment.objects.filter(customer=obj)
            .prefetch_related("allocations__invoice")
            .order_by("-received_on", "-pk")[:20]
        ),
        "paused": DunningPause.objects.filter(customer=obj, lifted_at__isnull=True).first(),
        "can_manage": has_capability(request.user, "payments.manage"),
    }
    return render_to_string("receivables/_customer_panel.html", context, request=request)
