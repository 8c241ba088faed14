"""Billing pages and actions. Logic lives in services; views translate HTTP."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from billing.services.ingestion import milestone_deliver as milestone_deliver_service
from revexos.accounts.decorators import requires
from revexos.parsing import parse_id


def _back(request):
    target = request.POST.get("next") or request.META.get("HTTP_REFERER") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("home")


@require_POST
@requires("milestones.deliver")
def milestone_deliver(request, milestone_id: int):
    """Mark a milestone delivered from the UI (a button on the contract page posts here).

    The milestone invoice is created by the billing evaluation enqueued on commit; posting twice
    changes nothing the second time.
    """
    from contracts.models import Milestone

    try:
        milestone = milestone_deliver_service(milestone_id=milestone_id, source="ui")
    except Milestone.DoesNotExist:
        messages.error(request, "That milestone does not exist.")
        return _back(request)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _back(request)
    messages.success(request, f"“{milestone.name}” is marked delivered; its invoice follows in a moment.")
    return _back(request)


# ----------------------------------------------------------------------------- finance workspace

from django.core.paginator import Paginator  # noqa: E402
from django.http import Http404, HttpResponse  # noqa: E402
from django.shortcuts import get_object_or_404, render  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.views.decorators.clickjacking import xframe_options_sameorigin  # noqa: E402

from billing import hooks, selectors  # noqa: E402
from billing.forms import CreditNoteForm, InvoiceFilterForm, PoForm, ReviewFilterForm  # noqa: E402
from billing.models import BillingReviewTask, DeliveryStatus, Invoice, InvoiceStatus  # noqa: E402
from revexos.accounts.roles import has_capability  # noqa: E402
from revexos.dates import tenant_today  # noqa: E402

PAGE_SIZE = 25
TASK_PAGE_SIZE = 50  # one line per task: a page holds a busy day


def _errors(exc: ValidationError) -> str:
    return (
        " ".join(m for msgs in exc.message_dict.values() for m in msgs)
        if hasattr(exc, "message_dict")
        else " ".join(exc.messages)
    )


def _customers():
    from contracts.models import Customer

    return (
        Customer.objects.filter(invoices__isnull=False)
        .distinct()
        .order_by("legal_name")
        .values_list("pk", "legal_name")
    )


def _sort_links(request, current: str) -> dict[str, dict]:
    """A column header's link: sorts by it, or reverses the order when it is the sort already."""
    links = {}
    for key in ("number", "issue_date", "due_date", "total"):
        query = request.GET.copy()
        query.pop("page", None)
        query["sort"] = f"-{key}" if current == key else key
        direction = "ascending" if current == key else "descending" if current == f"-{key}" else ""
        links[key] = {"url": f"?{query.urlencode()}", "direction": direction}
    return links


def _invoice_list_context(request) -> dict:
    form = InvoiceFilterForm(request.GET or None, customers=_customers())
    filters = form.filters() if request.GET else {}
    qs = selectors.invoice_workspace_list(**filters)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    today = tenant_today()
    for invoice in page.object_list:
        invoice.pay_state = invoice.payment_status(today)
    return {
        "sort": _sort_links(request, filters.get("sort", "")),
        "form": form,
        "page": page,
        "invoices": page.object_list,
        "totals": selectors.invoice_totals(qs),
        "query": query.urlencode(),
        "can_approve": has_capability(request.user, "invoices.approve"),
    }


@requires("invoices.view")
def invoice_list(request):
    context = _invoice_list_context(request)
    template = "billing/invoice_list.html#invoice-table" if request.htmx else "billing/invoice_list.html"
    return render(request, template, context)


@require_POST
@requires("invoices.approve")
def invoices_bulk_approve(request):
    """Approve and send the selected drafts: each passes its checks and is issued and queued for
    e-mail, or stays held with its reasons (reported back)."""
    from billing.services.invoicing import invoice_approve

    ids = [pk for pk in map(parse_id, request.POST.getlist("invoice")) if pk is not None]
    issued, held, skipped = [], [], []
    for invoice_id in ids:
        try:
            result = invoice_approve(invoice_id=invoice_id, user=request.user)
        except (Invoice.DoesNotExist, ValidationError):
            skipped.append(invoice_id)
            continue
        (issued if result.issued else held).append(result)
    if not ids:
        messages.warning(request, "Select the drafts to approve first.")
    if issued:
        messages.success(request, f"Issued and queued for e-mail: {', '.join(r.invoice.number for r in issued)}.")
    for r in held:
        messages.error(
            request, f"Draft #{r.invoice.pk} ({r.invoice.contract.number}) is still held: {' '.join(r.problems)}"
        )
    if skipped:
        messages.warning(
            request,
            f"{len(skipped)} selected invoice{'s were' if len(skipped) != 1 else ' was'} not a draft and left as is.",
        )
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = request.POST.get("next") or reverse("billing:invoice_list")
        return response
    return _back(request)


@requires("invoices.view")
def invoice_detail(request, invoice_id: int):
    from billing.services.pdf import invoice_tax_context

    try:
        invoice = selectors.invoice_workspace_detail(invoice_id=invoice_id)
    except Invoice.DoesNotExist:
        raise Http404("No such invoice.") from None
    from django.utils.safestring import mark_safe

    from billing.hooks import invoice_panels

    credited = invoice.credited_total
    context = {
        "invoice": invoice,
        "pay_state": invoice.payment_status(tenant_today()),
        "panels": [mark_safe(html) for html in invoice_panels(request=request, invoice=invoice)],
        "lines": list(invoice.lines.all()),
        "deliveries": list(invoice.deliveries.all()),
        "credit_notes": list(invoice.credit_notes.all()),
        "review_tasks": list(invoice.review_tasks.all()),
        "can_approve": has_capability(request.user, "invoices.approve"),
        "is_draft": invoice.status == InvoiceStatus.DRAFT,
        "can_credit": invoice.status not in (InvoiceStatus.DRAFT, InvoiceStatus.VOID),
        "remaining_credit": invoice.total - credited,
        "credit_form": CreditNoteForm(),
        "po_form": PoForm(initial={"po_number": invoice.po_number}),
        "last_failed": next((d for d in invoice.deliveries.all() if d.status == DeliveryStatus.FAILED), None),
        **invoice_tax_context(invoice),
        "can_manage_tax": has_capability(request.user, "tax_rates.manage"),
    }
    return render(request, "billing/invoice_detail.html", context)


@xframe_options_sameorigin  # the invoice page previews it in an iframe; production denies framing elsewhere
@requires("invoices.view")
def invoice_pdf(request, invoice_id: int):
    from billing.services.pdf import invoice_pdf_bytes, invoice_pdf_filename

    invoice = get_object_or_404(Invoice.objects.select_related("customer", "contract", "issuing_entity"), pk=invoice_id)
    response = HttpResponse(invoice_pdf_bytes(invoice=invoice), content_type="application/pdf")
    disposition = "attachment" if request.GET.get("download") else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{invoice_pdf_filename(invoice)}"'
    response["Cache-Control"] = "private, no-store" if invoice.status == InvoiceStatus.DRAFT else "private, max-age=300"
    return response


def _to_invoice(invoice_id: int):
    return redirect("billing:invoice_detail", invoice_id=invoice_id)


@require_POST
@requires("invoices.approve")
def invoice_approve_view(request, invoice_id: int):
    from billing.services.invoicing import invoice_approve

    try:
        result = invoice_approve(invoice_id=invoice_id, user=request.user)
    except Invoice.DoesNotExist:
        raise Http404("No such invoice.") from None
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return _to_invoice(invoice_id)
    if result.issued:
        messages.success(
            request,
            f"Invoice {result.invoice.number} is issued; its e-mail to {', '.join(result.invoice.customer.billing_emails)} is on its way.",
        )
    else:
        messages.error(request, "The invoice is still held: " + " ".join(result.problems))
    return _to_invoice(invoice_id)


@require_POST
@requires("invoices.approve")
def invoice_recheck_view(request, invoice_id: int):
    from billing.services.invoicing import invoice_recheck

    try:
        problems = invoice_recheck(invoice_id=invoice_id)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return _to_invoice(invoice_id)
    if problems:
        messages.warning(
            request,
            f"Checked again against the contract: {len(problems)} problem{'s' if len(problems) != 1 else ''} left.",
        )
    else:
        messages.success(
            request, "Checked again against the contract: every check passes. Approve it to issue and send it."
        )
    return _to_invoice(invoice_id)


@require_POST
@requires("invoices.approve")
def invoice_po_view(request, invoice_id: int):
    from billing.services.invoicing import invoice_po_record

    form = PoForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(form.errors)
        invoice = invoice_po_record(invoice_id=invoice_id, po_number=form.cleaned_data["po_number"], user=request.user)
        po = form.cleaned_data["po_number"]
        if invoice.hold_reasons:
            messages.warning(
                request, f"PO {po} is recorded on the draft; it is still held: " + " ".join(invoice.hold_reasons)
            )
        else:
            messages.success(
                request, f"PO {po} is recorded on the draft and every check passes: approve it to issue and send it."
            )
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return _to_invoice(invoice_id)


@require_POST
@requires("invoices.approve")
def invoice_resend(request, invoice_id: int):
    from billing.services.delivery import invoice_send

    try:
        delivery = invoice_send(invoice_id=invoice_id, resend=True, user=request.user)
        messages.success(request, f"Queued again for {', '.join(delivery.recipients)}.")
    except Invoice.DoesNotExist:
        raise Http404("No such invoice.") from None
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return _to_invoice(invoice_id)


@require_POST
@requires("invoices.approve")
def credit_note_create_view(request, invoice_id: int):
    from billing.services.invoicing import credit_note_create

    form = CreditNoteForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(form.errors)
        note = credit_note_create(
            invoice_id=invoice_id,
            amount=form.cleaned_data["amount"],
            reason=form.cleaned_data["reason"],
            created_by=request.user,
        )
        messages.success(request, f"Credit note {note.number} for {note.amount} {note.currency} is issued.")
    except Invoice.DoesNotExist:
        raise Http404("No such invoice.") from None
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return _to_invoice(invoice_id)


# ----------------------------------------------------------------------------- review tasks and outbox


def _users():
    from revexos.accounts.models import User

    return list(User.objects.filter(is_active=True).order_by("full_name", "email"))


def _tasks_about(tasks) -> None:
    """Each task's links to what it is about: its contract and invoice, and what modules above
    billing attach (a leakage finding), read for the whole page at once."""
    extra = hooks.review_task_subjects(tasks)
    for task in tasks:
        about = []
        if task.contract_id:
            about.append((task.contract.number, reverse("contracts:contract_detail", args=[task.contract_id]), "mono"))
        if task.invoice_id:
            label = task.invoice.number or f"Draft #{task.invoice_id}"
            about.append((label, reverse("billing:invoice_detail", kwargs={"invoice_id": task.invoice_id}), ""))
        about.extend((label, url, "") for label, url in extra.get(task.pk, []))
        task.about = about


def _task_context(request, task, **extra) -> dict:
    _tasks_about([task])
    return {
        "task": task,
        "users": extra.pop("users", None) or _users(),
        "can_act": has_capability(request.user, "invoices.approve"),
        **extra,
    }


@requires("invoices.view")
def review_task_list(request):
    users = _users()
    data = request.GET if request.GET else {"status": "open"}
    form = ReviewFilterForm(data, users=users)
    filters = form.cleaned_data if form.is_valid() else {"status": "open"}
    qs = selectors.review_task_list(user=request.user, **{k: v or "" for k, v in filters.items()})
    page = Paginator(qs, TASK_PAGE_SIZE).get_page(request.GET.get("page"))
    tasks = list(page.object_list)
    _tasks_about(tasks)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "tasks": tasks,
        "users": users,
        "query": query.urlencode(),
        "counts": selectors.review_task_counts(),
        "can_act": has_capability(request.user, "invoices.approve"),
    }
    template = "billing/review_tasks.html#task-table" if request.htmx else "billing/review_tasks.html"
    return render(request, template, context)


def _task_row(request, task_id: int, **extra):
    task = get_object_or_404(
        BillingReviewTask.objects.select_related("contract", "contract__customer", "invoice", "assignee"), pk=task_id
    )
    if request.htmx:
        return render(request, "billing/review_tasks.html#task-row", _task_context(request, task, **extra))
    error = extra.get("error")
    if error:
        messages.error(request, error)
    return redirect(reverse("billing:review_task_list"))


@require_POST
@requires("invoices.approve")
def review_task_assign_view(request, task_id: int):
    from billing.services.reviews import review_task_assign

    raw = request.POST.get("assignee", "")
    try:
        review_task_assign(task_id=task_id, assignee_id=parse_id(raw), user=request.user)
    except BillingReviewTask.DoesNotExist:
        raise Http404("No such task.") from None
    except ValidationError as exc:
        return _task_row(request, task_id, error=_errors(exc))
    return _task_row(request, task_id, saved="Assigned")


@require_POST
@requires("invoices.approve")
def review_task_resolve_view(request, task_id: int):
    from billing.services.reviews import review_task_resolve

    try:
        review_task_resolve(task_id=task_id, note=request.POST.get("note", ""), user=request.user)
    except BillingReviewTask.DoesNotExist:
        raise Http404("No such task.") from None
    except ValidationError as exc:
        return _task_row(request, task_id, error=_errors(exc))
    return _task_row(request, task_id, saved="Resolved")


@require_POST
@requires("invoices.approve")
def review_tasks_bulk_view(request):
    """Resolve or assign the selected tasks at once (one note for all), then back to the list."""
    from billing.services.reviews import review_tasks_assign, review_tasks_resolve

    ids = [pk for pk in map(parse_id, request.POST.getlist("task")) if pk is not None]
    action = request.POST.get("action", "")
    try:
        if action == "resolve":
            count = review_tasks_resolve(task_ids=ids, note=request.POST.get("note", ""), user=request.user)
            messages.success(request, f"{count} task{'s' if count != 1 else ''} resolved.")
        elif action == "assign":
            raw = request.POST.get("bulk_assignee", "")
            count = review_tasks_assign(task_ids=ids, assignee_id=parse_id(raw), user=request.user)
            messages.success(request, f"{count} task{'s' if count != 1 else ''} assigned.")
        else:
            messages.error(request, "Choose what to do with the selected tasks.")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    back = request.POST.get("next", "")
    if not back.startswith(reverse("billing:review_task_list")):
        back = reverse("billing:review_task_list")
    return redirect(back)


@requires("invoices.view")
def outbox(request):
    status = request.GET.get("status", "")
    if status not in DeliveryStatus.values:
        status = ""
    qs = selectors.delivery_list(status=status)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    counts = selectors.delivery_counts()
    context = {
        "page": page,
        "deliveries": page.object_list,
        "status": status,
        "statuses": [(value, label, counts.get(value, 0)) for value, label in DeliveryStatus.choices],
        "query": f"status={status}" if status else "",
    }
    return render(request, "billing/outbox.html#outbox-table" if request.htmx else "billing/outbox.html", context)
