"""Where modules above billing plug into an invoice's life without billing importing them.

Collections (``receivables/``) sits above billing: it registers here from its AppConfig.ready().
Billing calls the hooks at three moments and never knows who listens:

- ``invoice_issued`` — inside the issuing transaction, after credits were applied and the row
  became issued: unapplied cash on the customer's account pays the new invoice here.
- ``invoice_crediting`` — inside the credit-note transaction, before the invoice row takes the new
  credited total: payments beyond what is now collectible go back to the customer's account (the
  invoice's ``amount_open >= 0`` constraint would refuse the credit note otherwise).
- ``invoice_panels`` — extra cards on the invoice page (payments, write-off), rendered HTML.
- ``invoice_pay_url`` — the customer-facing pay link of an issued invoice (e-mail, PDF, API), or
  ``""`` when the tenant has no card payments set up.
- ``review_task_subjects`` — links from review tasks to what they are about when that lives above
  billing (a leakage finding): the review task list shows them beside the contract and invoice.

Hooks run in registration order; an exception aborts the surrounding transaction, as it should.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

_issued: list[Callable] = []
_issued_many: list[Callable] = []
_crediting: list[Callable] = []
_pay_url: list[Callable] = []
_panels: list[Callable] = []
_task_subjects: list[Callable] = []


def on_invoice_issued(func: Callable) -> Callable:
    """Register ``func(*, invoice)``."""
    if func not in _issued:
        _issued.append(func)
    return func


def on_invoices_issued(func: Callable) -> Callable:
    """Register ``func(*, invoices)`` for a billing run's chunk (many invoices in one transaction):
    the set-based form of ``on_invoice_issued``. A listener that registers only the single form
    is called once per invoice."""
    if func not in _issued_many:
        _issued_many.append(func)
    return func


def on_invoice_crediting(func: Callable) -> Callable:
    """Register ``func(*, invoice, amount: Decimal, on: date)``."""
    if func not in _crediting:
        _crediting.append(func)
    return func


def pay_url_provider(func: Callable) -> Callable:
    """Register ``func(invoice) -> str``; the first non-empty answer wins."""
    if func not in _pay_url:
        _pay_url.append(func)
    return func


def invoice_panel_provider(func: Callable) -> Callable:
    """Register ``func(*, request, invoice) -> str`` (safe HTML, or "" for nothing)."""
    if func not in _panels:
        _panels.append(func)
    return func


def invoice_panels(*, request, invoice) -> list[str]:
    return [html for func in _panels if (html := func(request=request, invoice=invoice))]


def invoice_issued(*, invoice) -> None:
    for func in _issued:
        func(invoice=invoice)
    for func in _issued_many:
        func(invoices=[invoice])


def invoices_issued(*, invoices: list) -> None:
    """A chunk's invoices were issued (rows issued, same transaction)."""
    if not invoices:
        return
    for func in _issued:
        for invoice in invoices:
            func(invoice=invoice)
    for func in _issued_many:
        func(invoices=invoices)


def invoice_crediting(*, invoice, amount: Decimal, on) -> None:
    for func in _crediting:
        func(invoice=invoice, amount=amount, on=on)


def invoice_pay_url(invoice) -> str:
    if invoice.status == "draft" or not invoice.pay_token:
        return ""
    for func in _pay_url:
        url = func(invoice)
        if url:
            return url
    return ""


def review_task_subject_provider(func: Callable) -> Callable:
    """Register ``func(tasks) -> {task id: [(label, url), …]}`` for a page of review tasks (one
    query per provider, whatever the number of tasks)."""
    if func not in _task_subjects:
        _task_subjects.append(func)
    return func


def review_task_subjects(tasks: list) -> dict[int, list[tuple[str, str]]]:
    found: dict[int, list[tuple[str, str]]] = {}
    for func in _task_subjects:
        for task_id, links in func(tasks).items():
            found.setdefault(task_id, []).extend(links)
    return found
