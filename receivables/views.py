"""Collections pages and actions. Logic lives in services and selectors; views translate HTTP."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from billing.models import Invoice
from contracts.wire import FieldErrors, Reader
from revexos.accounts.decorators import requires
from revexos.dates import tenant_today
from revexos.parsing import parse_date


def _errors(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return " ".join(m for msgs in exc.message_dict.values() for m in msgs)
    return " ".join(exc.messages)


def _to_invoice(invoice_id: int):
    return redirect("billing:invoice_detail", invoice_id=invoice_id)


def _invoice(invoice_id: int) -> Invoice:
    invoice = Invoice.objects.select_related("customer").filter(pk=invoice_id).first()
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice


@require_POST
@requires("payments.manage")
def invoice_payment_record(request, invoice_id: int):
    """Finance records a bank transfer (or check, …) against this invoice."""
    from receivables.services.ledger import payment_record

    invoice = _invoice(invoice_id)
    errors = FieldErrors()
    r = Reader(request.POST, errors)
    amount = r.money("amount", required=True, positive=True)
    received_on = r.date("received_on") or tenant_today()
    method = r.choice(
        "method", ["bank_transfer", "check", "ach", "sepa_debit", "card", "other"], default="bank_transfer"
    )
    reference = r.text("reference", max_length=300)
    try:
        if received_on > tenant_today():
            errors.add("received_on", "The payment date is in the future.")
        errors.raise_if_any()
        result = payment_record(
            customer=invoice.customer,
            amount=amount,
            currency=invoice.currency,
            received_on=received_on,
            method=method,
            reference=reference,
            allocations=[(invoice, min(amount, invoice.amount_open))],
            source="ui",
            created_by=request.user,
        )
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return _to_invoice(invoice_id)
    payment = result.payment
    note = (
        f" {payment.unapplied:.2f} {payment.currency} stays on the customer's account." if payment.unapplied > 0 else ""
    )
    messages.success(request, f"Payment of {payment.amount} {payment.currency} recorded on {invoice.number}.{note}")
    return _to_invoice(invoice_id)


@require_POST
@requires("payments.manage")
def invoice_write_off(request, invoice_id: int):
    from receivables.services.ledger import invoice_write_off as write_off

    _invoice(invoice_id)
    errors = FieldErrors()
    r = Reader(request.POST, errors)
    amount: Decimal | None = r.money("amount", positive=True)
    try:
        errors.raise_if_any()
        row = write_off(invoice_id=invoice_id, amount=amount, reason=request.POST.get("reason", ""), user=request.user)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return _to_invoice(invoice_id)
    messages.success(request, f"{row.amount} written off: {row.reason}")
    return _to_invoice(invoice_id)


def _parse_date(value: str | None) -> date | None:
    try:
        return parse_date(value) if value else None
    except ValueError:
        return None


# ----------------------------------------------------------------------------- the collections page

from django.core.paginator import Paginator  # noqa: E402
from django.shortcuts import get_object_or_404, render  # noqa: E402

from receivables import figures, selectors  # noqa: E402
from receivables.models import DunningPause  # noqa: E402
from revexos.accounts.roles import has_capability  # noqa: E402


def _as_of(request) -> date:
    today = tenant_today()
    day = _parse_date(request.GET.get("as_of"))
    if day is None or day > today or day.year < 2000:
        return today
    return day


@requires("payments.view")
def collections_page(request):
    today = tenant_today()
    as_of = _as_of(request)
    aging = selectors.ar_aging(as_of=as_of)
    context = {
        "today": today,
        "as_of": as_of,
        "aging": aging,
        "buckets": [(name, figures.BUCKET_LABELS[name]) for name in figures.BUCKETS],
        "home": selectors.collections_home(today=today),
        "expected": selectors.expected_cash(today=today),
        "queue": selectors.dunning_queue(today=today, limit=25),
        "unapplied": list(selectors.unapplied_cash()[:25]),
        "disputes": list(selectors.disputes_open()[:10]),
        "pauses": list(DunningPause.objects.filter(lifted_at__isnull=True).select_related("customer", "contract")),
        "payments": list(selectors.payment_list()[:10]),
        "can_manage": has_capability(request.user, "payments.manage"),
    }
    return render(request, "receivables/collections.html", context)


@requires("payments.view")
def aging_invoices(request):
    """The invoices behind an aging cell (htmx drill-down, or a page of its own)."""
    as_of = _as_of(request)
    bucket = request.GET.get("bucket", "")
    customer = request.GET.get("customer", "")
    rows = selectors.aging_invoices(
        as_of=as_of,
        currency=(request.GET.get("currency") or "")[:3].upper(),
        customer_id=int(customer) if customer.isdigit() and len(customer) < 12 else None,
        bucket=bucket if bucket in figures.BUCKETS else "",
    )
    for row in rows:
        row.days_past_due = max((as_of - row.due_date).days, 0)
    context = {"rows": rows, "as_of": as_of, "bucket": figures.BUCKET_LABELS.get(bucket, "All")}
    template = "receivables/_aging_invoices.html" if request.htmx else "receivables/aging_invoices.html"
    return render(request, template, context)


@require_POST
@requires("payments.manage")
def payment_apply(request, payment_id: int):
    from receivables.services.ledger import payment_allocate

    try:
        payment = payment_allocate(payment_id=payment_id)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, f"Applied; {payment.unapplied:.2f} {payment.currency} left on the account.")
    return redirect("receivables:collections")


@require_POST
@requires("payments.manage")
def pause_create(request):
    from contracts.models import Customer
    from receivables.services.dunning import dunning_pause

    customer = Customer.objects.filter(pk=int(request.POST.get("customer", "0") or 0)).first()
    try:
        if customer is None:
            raise ValidationError({"customer": ["Choose the customer whose reminders stop."]})
        dunning_pause(customer=customer, reason=request.POST.get("reason", ""), user=request.user)
        messages.success(request, f"Reminders to {customer.legal_name} are paused.")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    target = request.POST.get("next") or ""
    if target.startswith("/") and not target.startswith("//"):
        return redirect(target)
    return redirect("receivables:collections")


@require_POST
@requires("payments.manage")
def pause_lift(request, pause_id: int):
    from receivables.services.dunning import dunning_resume

    dunning_resume(pause_id=pause_id)
    messages.success(request, "Reminders resume with the next cycle.")
    return redirect("receivables:collections")


# ----------------------------------------------------------------------------- recording a bank payment


@requires("payments.manage")
def payment_new(request):
    """Finance records a bank transfer (or check, ACH …) against one or several invoices."""
    from contracts.models import Customer
    from receivables.services.ledger import payment_record

    customers = Customer.objects.filter(invoices__isnull=False).distinct().order_by("legal_name")
    customer = None
    raw = request.POST.get("customer") or request.GET.get("customer") or ""
    if raw.isdigit():
        customer = Customer.objects.filter(pk=int(raw)).first()
    open_invoices = []
    if customer is not None:
        from billing.models import Invoice

        open_invoices = list(
            Invoice.objects.filter(
                customer=customer, status__in=["issued", "sent", "partially_paid"], amount_open__gt=0
            ).order_by("due_date", "pk")
        )
    if request.method == "POST" and customer is not None:
        errors = FieldErrors()
        r = Reader(request.POST, errors)
        amount = r.money("amount", required=True, positive=True)
        currency = r.currency("currency", required=True)
        received_on = r.date("received_on", required=True)
        method = r.choice("method", ["bank_transfer", "check", "ach", "sepa_debit", "card", "other"], required=True)
        reference = r.text("reference", max_length=300)
        allocations = []
        for invoice in open_invoices:
            key = f"allocate_{invoice.pk}"
            if request.POST.get(key, "").strip():
                value = r.money(key, positive=True)
                if value is not None:
                    allocations.append((invoice, value))
        try:
            if received_on and received_on > tenant_today():
                errors.add("received_on", "The payment date is in the future.")
            errors.raise_if_any()
            result = payment_record(
                customer=customer,
                amount=amount,
                currency=currency,
                received_on=received_on,
                method=method,
                reference=reference,
                allocations=allocations or None,
                source="ui",
                created_by=request.user,
            )
        except ValidationError as exc:
            messages.error(request, _errors(exc))
        else:
            p = result.payment
            messages.success(
                request,
                f"Payment of {p.amount} {p.currency} from {customer.legal_name} recorded: {p.allocated:.2f} allocated, {p.unapplied:.2f} on account.",
            )
            return redirect("receivables:collections")
    return render(
        request,
        "receivables/payment_new.html",
        {
            "customers": customers,
            "customer": customer,
            "open_invoices": open_invoices,
            "today": tenant_today(),
            "post": request.POST,
        },
    )


@requires("payments.view")
def payment_list_page(request):
    qs = selectors.payment_list(customer=request.GET.get("customer", ""))
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "payments": page.object_list,
        "query": "",
        "can_manage": has_capability(request.user, "payments.manage"),
    }
    return render(request, "receivables/payments.html", context)


@require_POST
@requires("payments.manage")
def payment_refund_view(request, payment_id: int):
    from receivables.models import Payment
    from receivables.services.ledger import payment_refund

    payment = get_object_or_404(Payment, pk=payment_id)
    errors = FieldErrors()
    r = Reader(request.POST, errors)
    amount = r.money("amount", required=True, positive=True)
    try:
        errors.raise_if_any()
        refund, _ = payment_refund(
            payment_id=payment.pk, amount=amount, reason=request.POST.get("reason", ""), created_by=request.user
        )
        messages.success(
            request, f"Refund of {refund.amount} {payment.currency} recorded; the invoices it touched reopen."
        )
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect("receivables:payments")


# ----------------------------------------------------------------------------- statements of account


@requires("payments.view")
def statement_pdf(request, customer_id: int):
    from django.http import HttpResponse

    from contracts.models import Customer
    from receivables.services.statements import statement_filename, statement_pdf_render

    customer = get_object_or_404(Customer, pk=customer_id)
    as_of = _as_of(request)
    response = HttpResponse(statement_pdf_render(customer=customer, as_of=as_of), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{statement_filename(customer, as_of)}"'
    return response


@require_POST
@requires("payments.manage")
def statement_send_view(request, customer_id: int):
    from contracts.models import Customer
    from receivables.services.statements import statement_send

    customer = get_object_or_404(Customer, pk=customer_id)
    try:
        statement_send(customer=customer, as_of=tenant_today())
        messages.success(request, f"The statement of account is on its way to {', '.join(customer.billing_emails)}.")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect("contracts:customer_detail", pk=customer.pk)


# ----------------------------------------------------------------------------- settings


@requires("payments.view")
def settings_page(request):
    from receivables.models import CollectionsSettings, DunningStep
    from receivables.services.dunning import dunning_steps_ensure
    from receivables.services.stripe import stripe_account_current, stripe_account_masked

    can_manage = has_capability(request.user, "payments.manage")
    can_stripe = has_capability(request.user, "stripe.manage")
    dunning_steps_ensure()
    current = CollectionsSettings.current()
    if request.method == "POST" and request.POST.get("form") == "policy":
        if not can_manage:
            raise PermissionDenied("Your role does not allow payments.manage.")
        errors = FieldErrors()
        steps = list(DunningStep.objects.order_by("offset_days"))
        changes = []
        for step in steps:
            r = Reader(
                {k[len(f"s{step.pk}_") :]: v for k, v in request.POST.items() if k.startswith(f"s{step.pk}_")},
                errors,
                f"step {step.name}: ",
            )
            offset = r.integer("offset_days", required=True, minimum=-60, maximum=365)
            name = r.text("name", max_length=100, required=True)
            subject = r.text("subject", max_length=200, required=True)
            body = r.text("body", max_length=4000, required=True)
            changes.append(
                (
                    step,
                    offset,
                    name,
                    subject,
                    body,
                    request.POST.get(f"s{step.pk}_active") == "on",
                    request.POST.get(f"s{step.pk}_final") == "on",
                )
            )
        offsets = [c[1] for c in changes if c[1] is not None]
        if len(offsets) != len(set(offsets)):
            errors.add("offset_days", "Two steps have the same number of days; each step needs its own day.")
        if errors:
            messages.error(request, " ".join(f"{k}{' '.join(v)}" for k, v in errors.errors.items()))
        else:
            from django.db import transaction

            with transaction.atomic():  # the one-step-per-day constraint is checked at commit
                for step, offset, name, subject, body, active, final in changes:
                    DunningStep.objects.filter(pk=step.pk).update(
                        offset_days=offset, name=name, subject=subject, body=body, active=active, is_final=final
                    )
                current.dunning_enabled = request.POST.get("dunning_enabled") == "on"
                current.monthly_statements = request.POST.get("monthly_statements") == "on"
                current.save()
            messages.success(request, "Collection policy saved; the next cycle uses it.")
            return redirect("receivables:settings")
    if request.method == "POST" and request.POST.get("form") == "stripe":
        if not can_stripe:
            raise PermissionDenied("Your role does not allow stripe.manage.")
        from receivables.services.stripe import stripe_account_connect, stripe_account_disconnect

        if request.POST.get("disconnect"):
            stripe_account_disconnect()
            messages.success(request, "Stripe is disconnected: invoices carry no pay link from now on.")
            return redirect("receivables:settings")
        try:
            stripe_account_connect(
                secret_key=request.POST.get("secret_key", ""),
                publishable_key=request.POST.get("publishable_key", ""),
                webhook_secret=request.POST.get("webhook_secret", ""),
                user=request.user,
            )
            messages.success(request, "Stripe is connected: issued invoices carry a pay link.")
            return redirect("receivables:settings")
        except ValidationError as exc:
            messages.error(request, _errors(exc))
    from receivables.services.paylinks import tenant_base_url

    return render(
        request,
        "receivables/settings.html",
        {
            "settings": current,
            "steps": DunningStep.objects.order_by("offset_days"),
            "stripe": stripe_account_masked(stripe_account_current()),
            "webhook_url": f"{tenant_base_url()}/webhooks/stripe/",
            "can_manage": can_manage,
            "can_stripe": can_stripe,
        },
    )


@require_POST
@requires("payments.manage")
def pay_link_revoke_view(request, invoice_id: int):
    from receivables.services.paylinks import pay_link_revoke

    _invoice(invoice_id)
    pay_link_revoke(invoice_id=invoice_id)
    messages.success(request, "The old pay link no longer works; later e-mails carry the new one.")
    return _to_invoice(invoice_id)


# ----------------------------------------------------------------------------- bank statements


@requires("payments.manage")
def bank_import(request):
    """Upload → preview (every line checked and matched) → commit, all or nothing."""
    import base64
    import binascii

    from receivables.services.bank_import import ImportRefused, statement_commit, statement_preview

    context: dict = {"formats": [("", "Detect"), ("csv", "CSV"), ("camt053", "CAMT.053"), ("mt940", "MT940")]}
    if request.method == "POST":
        fmt = request.POST.get("format", "")
        filename = ""
        if request.FILES.get("file"):
            upload = request.FILES["file"]
            filename = upload.name
            data = upload.read(6 * 1024 * 1024)
        else:
            try:
                data = base64.b64decode(request.POST.get("payload", ""), validate=True)
            except (binascii.Error, ValueError):
                data = b""
            filename = request.POST.get("filename", "")[:300]
        if not data:
            messages.error(request, "Choose the statement file first.")
            return redirect("receivables:bank_import")
        context.update(filename=filename, fmt=fmt, payload=base64.b64encode(data).decode())
        if request.POST.get("action") == "commit":
            try:
                statement, preview = statement_commit(data=data, filename=filename, fmt=fmt, user=request.user)
            except ImportRefused as exc:
                context["preview"] = exc.preview
                return render(request, "receivables/bank_import.html", context, status=400)
            if statement is None:
                messages.info(request, "Every line of this statement was imported before; nothing changed.")
            else:
                messages.success(
                    request,
                    f"Imported {len(preview.new_lines)} line{'s' if len(preview.new_lines) != 1 else ''}: "
                    f"{len(preview.matched)} matched to invoices, {len(preview.queued)} waiting in the match queue.",
                )
            return redirect("receivables:bank_queue")
        preview = statement_preview(data=data, filename=filename, fmt=fmt)
        context["preview"] = preview
        return render(request, "receivables/bank_import.html", context, status=200 if preview.ok else 400)
    return render(request, "receivables/bank_import.html", context)


@requires("payments.manage")
def bank_queue(request):
    from billing.models import Invoice
    from contracts.models import Customer
    from receivables.models import BankLineStatus, BankStatement, BankStatementLine

    queued = list(BankStatementLine.objects.filter(status=BankLineStatus.QUEUED).order_by("booked_on", "pk")[:100])
    customers = list(Customer.objects.filter(invoices__isnull=False).distinct().order_by("legal_name"))
    open_invoices = list(
        Invoice.objects.filter(status__in=["issued", "sent", "partially_paid"], amount_open__gt=0)
        .select_related("customer")
        .order_by("customer__legal_name", "due_date")
    )
    recent = list(
        BankStatementLine.objects.exclude(status=BankLineStatus.QUEUED)
        .select_related("payment__customer")
        .order_by("-pk")[:20]
    )
    return render(
        request,
        "receivables/bank_queue.html",
        {
            "queued": queued,
            "customers": customers,
            "open_invoices": open_invoices,
            "recent": recent,
            "statements": list(BankStatement.objects.order_by("-imported_at")[:10]),
        },
    )


@require_POST
@requires("payments.manage")
def bank_line_match_view(request, line_id: int):
    from billing.models import Invoice
    from contracts.models import Customer
    from receivables.services.bank_import import bank_line_match

    raw_invoice = request.POST.get("invoice", "")
    invoice = (
        Invoice.objects.filter(pk=int(raw_invoice)).select_related("customer").first()
        if raw_invoice.isdigit()
        else None
    )
    raw_customer = request.POST.get("customer", "")
    customer = (
        invoice.customer
        if invoice
        else (Customer.objects.filter(pk=int(raw_customer)).first() if raw_customer.isdigit() else None)
    )
    try:
        if customer is None:
            raise ValidationError({"customer": ["Choose the invoice or the customer this money came from."]})
        payment = bank_line_match(
            line_id=line_id, customer=customer, invoices=[invoice] if invoice else None, user=request.user
        )
        messages.success(request, f"Matched: {payment.amount} {payment.currency} from {customer.legal_name}.")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect("receivables:bank_queue")


@require_POST
@requires("payments.manage")
def bank_line_ignore_view(request, line_id: int):
    from receivables.services.bank_import import bank_line_ignore

    bank_line_ignore(line_id=line_id)
    messages.success(request, "The line is marked as not a customer payment.")
    return redirect("receivables:bank_queue")
