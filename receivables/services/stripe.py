"""Card payments through the tenant's own Stripe account (official ``stripe`` package).

- **Connect**: ``stripe_account_connect`` stores the tenant's secret key, publishable key and
  webhook signing secret server-side, after checking them against Stripe. Pages and the API only
  show their last four characters (``stripe_account_masked``). ``integrations`` delegates
  ``POST /api/v1/integrations {"source": "stripe", …}`` here.
- **Pay**: the pay page tokenises the card with Stripe.js; ``card_payment_confirm`` gets or
  creates the invoice's PaymentIntent for its open amount (idempotency key per invoice, amount
  and currency), attaches the card and confirms it. Anything Stripe needs from the cardholder
  (3-D Secure) is then handled in the browser by Stripe.js with the intent's client secret.
- **Webhook**: ``stripe_webhook_receive`` verifies ``Stripe-Signature`` over the raw body with
  the tenant's signing secret and the 300 s tolerance, stores the event once by its id and
  handles it in the same transaction (a failure rolls both back and Stripe retries):
  payment_intent.succeeded → payment + allocation; payment_intent.payment_failed → logged on
  the invoice (reminders go on); charge.refunded → refund (allocations reversed newest first);
  charge.dispute.created → invoice disputed, reminders stop, review task; charge.dispute.closed
  → lost: a chargeback reverses the payment's allocations newest first (the invoice reopens);
  won: the invoice is no longer disputed and reminders resume.

``STRIPE_API_BASE`` points the client (and the Stripe.js it loads) at a Stripe-compatible server
such as localstripe in development and tests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from billing.models import Invoice, InvoiceStatus, ReviewTaskKind
from receivables.models import (
    Dispute,
    Payment,
    PaymentAttempt,
    PaymentAttemptStatus,
    PaymentMethod,
    PaymentSource,
    RefundKind,
    StripeAccount,
    StripeEvent,
)
from revexos.money import minor_units, quantize

logger = logging.getLogger(__name__)
TOLERANCE_SECONDS = 300
HANDLED = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
)


class WebhookRejected(Exception):
    """The request is not a genuine event for this tenant: answer 400, store nothing."""


# --------------------------------------------------------------------------- account


def stripe_client(account: StripeAccount):
    import stripe

    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
    return stripe.StripeClient(account.secret_key, base_addresses=base, max_network_retries=1)


def stripe_js_url() -> str:
    """Stripe.js, or the compatible stand-in served by the local Stripe server."""
    if settings.STRIPE_API_BASE:
        return settings.STRIPE_API_BASE.rstrip("/") + "/js.stripe.com/v3/"
    return "https://js.stripe.com/v3/"


def _mask(value: str) -> str:
    """``sk_live_…a1b2``: the key's kind and its last four characters, never more."""
    if not value:
        return ""
    prefix = next(
        (
            p
            for p in ("sk_live_", "sk_test_", "rk_live_", "rk_test_", "pk_live_", "pk_test_", "whsec_")
            if value.startswith(p)
        ),
        "",
    )
    return f"{prefix}…{value[-4:]}"


def stripe_account_masked(account: StripeAccount | None) -> dict | None:
    if account is None:
        return None
    return {
        "secret_key": _mask(account.secret_key),
        "publishable_key": _mask(account.publishable_key),
        "webhook_secret": _mask(account.webhook_secret),
        "account_name": account.account_name,
        "connected_at": account.connected_at,
    }


def stripe_account_current() -> StripeAccount | None:
    return StripeAccount.objects.order_by("pk").first()


def stripe_account_connect(
    *, secret_key: str, publishable_key: str, webhook_secret: str, user=None, verify: bool = True
) -> StripeAccount:
    """Connect (or replace) the tenant's Stripe account. Keys are checked by shape and, with
    ``verify``, by one call to Stripe with the secret key; nothing is stored when either fails."""
    from receivables.services.paylinks import card_payments_forget

    secret_key, publishable_key, webhook_secret = (
        v.strip() for v in (secret_key or "", publishable_key or "", webhook_secret or "")
    )
    errors: dict[str, list[str]] = {}
    if not secret_key.startswith(("sk_", "rk_")) or len(secret_key) > 255:
        errors["secret_key"] = ["A Stripe secret key starts with sk_ (or a restricted key with rk_)."]
    if not publishable_key.startswith("pk_") or len(publishable_key) > 255:
        errors["publishable_key"] = ["A Stripe publishable key starts with pk_."]
    if not webhook_secret.startswith("whsec_") or len(webhook_secret) > 255:
        errors["webhook_secret"] = [
            "The webhook signing secret starts with whsec_ (Stripe shows it on the webhook endpoint)."
        ]
    if errors:
        raise ValidationError(errors)
    account_name = ""
    if verify:
        probe = StripeAccount(secret_key=secret_key, publishable_key=publishable_key, webhook_secret=webhook_secret)
        try:
            stripe_client(probe).v1.balance.retrieve()
        except Exception as exc:
            raise ValidationError(
                {"secret_key": [f"Stripe refused this key: {getattr(exc, 'user_message', None) or exc}"]}
            ) from None
    with transaction.atomic():
        StripeAccount.objects.all().delete()
        account = StripeAccount.objects.create(
            secret_key=secret_key,
            publishable_key=publishable_key,
            webhook_secret=webhook_secret,
            account_name=account_name,
            connected_by=user if getattr(user, "is_authenticated", False) else None,
        )
    card_payments_forget()
    return account


def stripe_account_disconnect() -> None:
    from receivables.services.paylinks import card_payments_forget

    StripeAccount.objects.all().delete()
    card_payments_forget()


# --------------------------------------------------------------------------- paying an invoice


def to_minor(amount: Decimal, currency: str) -> int:
    return int(quantize(amount, currency).scaleb(minor_units(currency)))


def from_minor(value: int, currency: str) -> Decimal:
    return quantize(Decimal(int(value)).scaleb(-minor_units(currency)), currency)


@dataclass
class ConfirmOutcome:
    status: str  # succeeded | processing | requires_action | failed
    client_secret: str = ""
    message: str = ""


def _intent_for(*, client, invoice: Invoice) -> PaymentAttempt:
    amount = quantize(invoice.amount_open, invoice.currency)
    minor = to_minor(amount, invoice.currency)
    existing = (
        PaymentAttempt.objects.filter(invoice=invoice, amount=amount, currency=invoice.currency)
        .exclude(status=PaymentAttemptStatus.SUCCEEDED)
        .order_by("-created_at")
        .first()
    )
    if existing is not None and existing.status != PaymentAttemptStatus.FAILED:
        return existing
    attempt_no = PaymentAttempt.objects.filter(invoice=invoice, amount=amount).count()
    intent = client.v1.payment_intents.create(
        params={
            "amount": minor,
            "currency": invoice.currency.lower(),
            "metadata": {
                "invoice_id": str(invoice.pk),
                "invoice_number": invoice.number,
                "tenant": connection.schema_name,
            },
        },
        # One intent per invoice, amount and attempt: a double click or a retried request reuses it.
        options={
            "idempotency_key": f"revexos:{connection.schema_name}:invoice:{invoice.pk}:{minor}{invoice.currency}:{attempt_no}"
        },
    )
    attempt, _ = PaymentAttempt.objects.get_or_create(
        payment_intent_id=intent.id, defaults={"invoice": invoice, "amount": amount, "currency": invoice.currency}
    )
    attempt.client_secret = intent.client_secret
    return attempt


def card_payment_confirm(*, invoice: Invoice, card_token: str) -> ConfirmOutcome:
    """Pay the open amount of ``invoice`` with a card tokenised by Stripe.js on the pay page."""
    account = stripe_account_current()
    if account is None:
        return ConfirmOutcome(status="failed", message="Card payments are not available for this invoice.")
    if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.VOID) or invoice.amount_open <= 0:
        return ConfirmOutcome(status="failed", message="Nothing is open on this invoice any more.")
    if not card_token or len(card_token) > 200 or not card_token.startswith(("tok_", "pm_")):
        return ConfirmOutcome(status="failed", message="The card details did not reach us; please try again.")
    import stripe

    client = stripe_client(account)
    try:
        attempt = _intent_for(client=client, invoice=invoice)
        if card_token.startswith("tok_"):
            token = client.v1.tokens.retrieve(card_token)
            method = token.card.id
        else:
            method = card_token
        client.v1.payment_intents.update(attempt.payment_intent_id, params={"payment_method": method})
        intent = client.v1.payment_intents.confirm(attempt.payment_intent_id)
    except stripe.StripeError as exc:
        message = getattr(exc, "user_message", None) or "The card was declined."
        PaymentAttempt.objects.filter(invoice=invoice, status=PaymentAttemptStatus.CREATED).update(
            status=PaymentAttemptStatus.FAILED, last_error=message[:500]
        )
        return ConfirmOutcome(status="failed", message=message)
    status = intent.status
    if status == "requires_action":
        return ConfirmOutcome(status="requires_action", client_secret=intent.client_secret)
    if status in ("succeeded", "processing", "requires_capture"):
        PaymentAttempt.objects.filter(pk=attempt.pk).update(status=PaymentAttemptStatus.PROCESSING)
        return ConfirmOutcome(status="processing")
    error = getattr(intent, "last_payment_error", None)
    message = (error or {}).get("message") if isinstance(error, dict) else getattr(error, "message", "")
    PaymentAttempt.objects.filter(pk=attempt.pk).update(
        status=PaymentAttemptStatus.FAILED, last_error=(message or status)[:500]
    )
    return ConfirmOutcome(status="failed", message=message or "The card was declined.")


# --------------------------------------------------------------------------- webhook


def stripe_webhook_receive(*, payload: bytes, signature: str | None) -> tuple[StripeEvent, bool]:
    """Verify, store once and handle one event. Returns (event, handled_now); raises WebhookRejected."""
    import stripe

    account = stripe_account_current()
    if account is None:
        raise WebhookRejected("No Stripe account is connected for this workspace.")
    if not signature:
        raise WebhookRejected("Missing Stripe-Signature header.")
    try:
        event = stripe.Webhook.construct_event(payload, signature, account.webhook_secret, tolerance=TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as exc:
        raise WebhookRejected(f"Signature check failed: {exc.user_message or exc}") from None
    except ValueError:
        raise WebhookRejected("The body is not a JSON Stripe event.") from None
    data = event.to_dict() if hasattr(event, "to_dict") else dict(event)
    event_id = str(data.get("id") or "")
    event_type = str(data.get("type") or "")
    if not event_id or len(event_id) > 100 or not event_type:
        raise WebhookRejected("The event has no id or type.")
    try:
        with transaction.atomic():
            row = StripeEvent.objects.create(event_id=event_id, type=event_type[:100], payload=data)
            outcome = _handle(event_type, (data.get("data") or {}).get("object") or {}, created=data.get("created"))
            row.outcome = outcome[:300]
            row.processed_at = timezone.now()
            row.save(update_fields=["outcome", "processed_at"])
    except IntegrityError:
        # Delivered before (or at this very moment by a concurrent delivery): already handled.
        return StripeEvent.objects.get(event_id=event_id), False
    return row, True


def _event_day(created) -> datetime.date:
    from revexos.dates import tenant_zone

    try:
        moment = datetime.fromtimestamp(int(created), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        moment = timezone.now()
    return min(moment.astimezone(tenant_zone()).date(), timezone.now().astimezone(tenant_zone()).date())


def _invoice_from_metadata(obj: dict) -> Invoice | None:
    metadata = obj.get("metadata") or {}
    if metadata.get("tenant") not in (None, "", connection.schema_name):
        return None  # an intent of another workspace on a shared account: not ours
    raw = str(metadata.get("invoice_id") or "")
    if not raw.isdigit():
        return None
    return Invoice.objects.filter(pk=int(raw)).first()


def _handle(event_type: str, obj: dict, *, created) -> str:
    if event_type == "payment_intent.succeeded":
        return _intent_succeeded(obj, created=created)
    if event_type == "payment_intent.payment_failed":
        return _intent_failed(obj)
    if event_type == "charge.refunded":
        return _charge_refunded(obj, created=created)
    if event_type == "charge.dispute.created":
        return _dispute_created(obj, created=created)
    if event_type == "charge.dispute.closed":
        return _dispute_closed(obj, created=created)
    return "ignored"


def _intent_succeeded(obj: dict, *, created) -> str:
    from receivables.services.ledger import payment_record

    invoice = _invoice_from_metadata(obj)
    intent_id = str(obj.get("id") or "")
    currency = str(obj.get("currency") or "").upper()
    if invoice is None or not intent_id or currency != invoice.currency:
        return "ignored: not a payment of one of this workspace's invoices"
    amount = from_minor(obj.get("amount_received") or obj.get("amount") or 0, currency)
    if amount <= 0:
        return "ignored: no amount received"
    charge = obj.get("latest_charge") or ""
    if isinstance(charge, dict):
        charge = charge.get("id", "")
    if not charge:
        charges = (obj.get("charges") or {}).get("data") or []
        charge = charges[0].get("id", "") if charges else ""
    invoice = Invoice.objects.get(pk=invoice.pk)
    take = min(amount, invoice.amount_open) if invoice.status not in ("draft", "void") else Decimal(0)
    result = payment_record(
        customer=invoice.customer,
        amount=amount,
        currency=currency,
        received_on=_event_day(created),
        method=PaymentMethod.CARD,
        reference=invoice.number or "",
        external_id=f"stripe:{intent_id}",
        allocations=[(invoice, take)] if take > 0 else None,
        source=PaymentSource.STRIPE,
        charge_id=str(charge),
    )
    PaymentAttempt.objects.filter(payment_intent_id=intent_id).update(
        status=PaymentAttemptStatus.SUCCEEDED, last_error=""
    )
    return f"payment {result.payment.pk} {'recorded' if result.created else 'already recorded'}"


def _intent_failed(obj: dict) -> str:
    invoice = _invoice_from_metadata(obj)
    intent_id = str(obj.get("id") or "")
    if invoice is None or not intent_id:
        return "ignored"
    error = obj.get("last_payment_error") or {}
    message = str(error.get("message") or error.get("code") or "The card payment failed.")[:500]
    attempt, created = PaymentAttempt.objects.get_or_create(
        payment_intent_id=intent_id,
        defaults={
            "invoice": invoice,
            "amount": from_minor(obj.get("amount") or 0, invoice.currency),
            "currency": invoice.currency,
            "status": PaymentAttemptStatus.FAILED,
            "last_error": message,
        },
    )
    if not created:
        PaymentAttempt.objects.filter(pk=attempt.pk).update(status=PaymentAttemptStatus.FAILED, last_error=message)
    return f"payment failed on {invoice.number}: {message}"


def _payment_for_charge(obj: dict) -> Payment | None:
    charge_id = str(obj.get("id") or obj.get("charge") or "")
    intent = obj.get("payment_intent") or ""
    if isinstance(intent, dict):
        intent = intent.get("id", "")
    payment = Payment.objects.filter(charge_id=charge_id).first() if charge_id else None
    if payment is None and intent:
        payment = Payment.objects.filter(external_id=f"stripe:{intent}").first()
    return payment


def _charge_refunded(obj: dict, *, created) -> str:
    from receivables.services.ledger import payment_refund

    payment = _payment_for_charge(obj)
    if payment is None:
        return "ignored: no payment of this workspace for that charge"
    currency = str(obj.get("currency") or payment.currency).upper()
    refunded_total = from_minor(obj.get("amount_refunded") or 0, currency)
    already = quantize(payment.refunded, payment.currency)
    delta = refunded_total - already
    if delta <= 0:
        return "refund already recorded"
    refund, _ = payment_refund(
        payment_id=payment.pk,
        amount=min(delta, payment.amount - payment.refunded),
        reason="Refunded in Stripe",
        refunded_on=_event_day(created),
        kind=RefundKind.REFUND,
        external_id=f"stripe:{obj.get('id')}:refunded:{to_minor(refunded_total, currency)}",
    )
    return f"refund {refund.pk} of {refund.amount} {payment.currency}"


def _dispute_created(obj: dict, *, created) -> str:
    from billing.services.reviews import review_task_raise
    from receivables.models import Allocation

    dispute_id = str(obj.get("id") or "")
    payment = _payment_for_charge({"charge": obj.get("charge"), "payment_intent": obj.get("payment_intent")})
    if not dispute_id or payment is None:
        return "ignored: no payment of this workspace for that charge"
    invoice_ids = list(
        Allocation.objects.filter(payment=payment, kind="allocation").values_list("invoice_id", flat=True).distinct()
    )
    currency = str(obj.get("currency") or payment.currency).upper()
    Dispute.objects.get_or_create(
        external_id=dispute_id,
        defaults={
            "payment": payment,
            "invoice_id": invoice_ids[0] if invoice_ids else None,
            "amount": from_minor(obj.get("amount") or 0, currency),
            "currency": currency,
            "reason": str(obj.get("reason") or "")[:100],
            "status": str(obj.get("status") or "needs_response")[:40],
            "opened_on": _event_day(created),
        },
    )
    Invoice.objects.filter(pk__in=invoice_ids, disputed_at__isnull=True).update(disputed_at=timezone.now())
    for invoice in Invoice.objects.filter(pk__in=invoice_ids).select_related("customer"):
        review_task_raise(
            kind=ReviewTaskKind.PAYMENT_DISPUTE,
            dedupe_key=f"dispute:{dispute_id}:{invoice.pk}",
            title=f"Card payment on {invoice.number} ({invoice.customer.legal_name}) is disputed",
            detail=(
                f"The cardholder disputes {from_minor(obj.get('amount') or 0, currency)} {currency} "
                f"(reason: {obj.get('reason') or 'not given'}). Reminders for this invoice are stopped. "
                "Answer the dispute in Stripe with the signed contract and delivery evidence."
            ),
            contract_id=invoice.contract_id,
            invoice_id=invoice.pk,
        )
    return f"dispute {dispute_id} on {len(invoice_ids)} invoice(s)"


# --------------------------------------------------------------------------- POST /api/v1/integrations


def stripe_integration_create(data: dict, request) -> dict:
    """``POST /api/v1/integrations {"source": "stripe", "secret_key", "publishable_key",
    "webhook_secret"}`` (DESIGN.md §5.1): connect the tenant's Stripe account. ``webhook_secret``
    may also be sent as ``secret``. The answer names the webhook URL; the keys come back masked
    (they are the tenant's own, never shown in full)."""
    allowed = {"source", "secret_key", "publishable_key", "webhook_secret", "secret", "name"}
    unknown = sorted(k for k in data if k not in allowed)
    if unknown:
        raise ValidationError({k: ["Unknown field for a Stripe connection."] for k in unknown})
    values = {}
    for key in ("secret_key", "publishable_key", "webhook_secret"):
        raw = data.get(key) if key != "webhook_secret" else (data.get(key) or data.get("secret"))
        if raw is not None and not isinstance(raw, str):
            raise ValidationError({key: ["Enter the key as text."]})
        values[key] = raw or ""
    account = stripe_account_connect(**values, user=getattr(request, "user", None))
    return _integration_out(request, account)


def stripe_integration_listing(request) -> list[dict]:
    account = stripe_account_current()
    return [_integration_out(request, account)] if account is not None else []


def _integration_out(request, account: StripeAccount) -> dict:
    from django.urls import reverse

    last = StripeEvent.objects.order_by("-received_at").values_list("received_at", flat=True).first()
    return {
        "id": f"stripe-{account.pk}",
        "source": "stripe",
        "name": account.account_name or "Stripe",
        "is_active": True,
        "webhook_url": request.build_absolute_uri(reverse("pay:stripe_webhook")),
        "secret": _mask(account.webhook_secret),
        "last_event_at": last.isoformat() if last else None,
    }


def _dispute_closed(obj: dict, *, created) -> str:
    from receivables.services.ledger import payment_refund

    dispute_id = str(obj.get("id") or "")
    status = str(obj.get("status") or "")
    dispute = Dispute.objects.filter(external_id=dispute_id).select_related("payment").first()
    if dispute is None:
        _dispute_created(obj, created=created)
        dispute = Dispute.objects.filter(external_id=dispute_id).select_related("payment").first()
        if dispute is None:
            return "ignored: no payment of this workspace for that charge"
    Dispute.objects.filter(pk=dispute.pk).update(status=status[:40] or dispute.status)
    invoice_ids = [dispute.invoice_id] if dispute.invoice_id else []
    if status == "lost" and dispute.payment is not None:
        payment = dispute.payment
        amount = min(from_minor(obj.get("amount") or 0, payment.currency), payment.amount - payment.refunded)
        if amount > 0:
            payment_refund(
                payment_id=payment.pk,
                amount=amount,
                reason=f"Chargeback: dispute {dispute_id} lost ({dispute.reason or 'no reason given'})",
                refunded_on=_event_day(created),
                kind=RefundKind.CHARGEBACK,
                external_id=f"stripe:{dispute_id}:lost",
            )
    if status in ("won", "lost", "warning_closed"):
        # Decided: the invoice is an ordinary (open or paid) invoice again, and reminders resume.
        Invoice.objects.filter(pk__in=invoice_ids).update(disputed_at=None)
    return f"dispute {dispute_id} {status}"
