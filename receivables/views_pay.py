"""The customer's pay page (no login: the unguessable token is the key) and the Stripe webhook.

Both are public by design and listed as such in the role test: the pay page shows one invoice to
whoever holds its link, and the webhook trusts nothing but the Stripe signature.
"""

from __future__ import annotations

import json
import logging

from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from receivables.services.paylinks import card_payments_enabled, invoice_by_token

logger = logging.getLogger(__name__)
MAX_WEBHOOK_BYTES = 512 * 1024


def _invoice_or_404(token: str):
    invoice = invoice_by_token(token)
    if invoice is None:
        raise Http404("This payment link is not valid (any more). Ask the sender for a new one.")
    return invoice


@require_GET
def pay_page(request, token: str):
    from receivables.services.stripe import stripe_account_current, stripe_js_url
    from revexos.dates import tenant_today

    invoice = _invoice_or_404(token)
    account = stripe_account_current() if card_payments_enabled() else None
    state = invoice.payment_status(tenant_today())
    context = {
        "invoice": invoice,
        "entity": invoice.issuing_entity,
        "customer": invoice.customer,
        "state": state,
        "token": token,
        "can_pay": account is not None
        and invoice.amount_open > 0
        and invoice.status != "void"
        and not invoice.disputed_at,
        "publishable_key": account.publishable_key if account else "",
        "stripe_js": stripe_js_url(),
    }
    response = render(request, "receivables/pay.html", context)
    response["Referrer-Policy"] = "no-referrer"  # the token is in the URL: never leak it onwards
    response["X-Robots-Tag"] = "noindex"
    return response


@require_GET
def pay_pdf(request, token: str):
    from billing.services.pdf import invoice_pdf_bytes, invoice_pdf_filename

    invoice = _invoice_or_404(token)
    response = HttpResponse(invoice_pdf_bytes(invoice=invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{invoice_pdf_filename(invoice)}"'
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_POST
def pay_confirm(request, token: str):
    """The card form posts the Stripe.js token here; we confirm the PaymentIntent server-side."""
    from receivables.services.stripe import card_payment_confirm

    invoice = _invoice_or_404(token)
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"status": "failed", "message": "Malformed request."}, status=400)
    card = body.get("token") if isinstance(body, dict) else None
    outcome = card_payment_confirm(invoice=invoice, card_token=str(card or ""))
    status = 402 if outcome.status == "failed" else 200
    return JsonResponse(
        {"status": outcome.status, "client_secret": outcome.client_secret, "message": outcome.message}, status=status
    )


@require_GET
def pay_status(request, token: str):
    from revexos.dates import tenant_today

    invoice = _invoice_or_404(token)
    return JsonResponse(
        {"payment_status": invoice.payment_status(tenant_today()), "amount_open": f"{invoice.amount_open:.2f}"}
    )


@csrf_exempt  # Stripe cannot send a CSRF token; the signature over the raw body is the check
@require_POST
def stripe_webhook(request):
    from receivables.services.stripe import WebhookRejected, stripe_webhook_receive

    if len(request.body) > MAX_WEBHOOK_BYTES:
        return JsonResponse({"error": "The event is too large."}, status=413)
    try:
        event, handled = stripe_webhook_receive(payload=request.body, signature=request.headers.get("Stripe-Signature"))
    except WebhookRejected as exc:
        logger.warning("stripe webhook rejected: %s", exc)
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"received": True, "event": event.event_id, "duplicate": not handled, "outcome": event.outcome})
