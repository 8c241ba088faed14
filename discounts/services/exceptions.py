"""Granting, revoking and extending exceptions. One transaction each; errors name their field.

Creation records the approval (the finance or admin user, or the API key that posted it) and
logs a ``created`` event; the status is set from the tenant-local today right away, so a discount
starting today is active without waiting for the beat.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from contracts.models import PriceLine
from contracts.selectors import contract_terms_on
from discounts.hooks import discount_changed
from discounts.models import (
    Credit,
    CreditStatus,
    Discount,
    DiscountKind,
    DiscountScope,
    EventAction,
    ExceptionEvent,
    ExceptionStatus,
    PriceOverride,
)
from discounts.services._common import actor_fields, tenant_today
from discounts.services.lifecycle import discount_status_on, status_after_change
from revexos.accounts.roles import has_capability
from revexos.money import MINOR_UNITS, quantize
from revexos.parsing import date_in_bounds

MAX_VALUE = Decimal("1000000000000")
NO_EXPIRY_HELP = (
    "Give an end date or a number of billing cycles. A discount that never expires needs a "
    "written reason why it has no expiry."
)


class Errors(dict):
    def add(self, name: str, message: str) -> None:
        self.setdefault(name, []).append(message)

    def dates_in_bounds(self, **days: date | None) -> None:
        """Every date of an exception lies in the window dates may take (revexos.parsing)."""
        for name, day in days.items():
            if day is not None:
                try:
                    date_in_bounds(day)
                except ValueError as exc:
                    self.add(name, str(exc))

    def raise_if_any(self) -> None:
        if self:
            raise ValidationError(dict(self))


def _created(model, user, **fields):
    """Create a row with its first history record attributed to the user who granted it."""
    obj = model(**fields)
    if user is not None:
        obj._history_user = user
    obj.save()
    return obj


def _approval(*, approved_by, approved_label: str, created_by, errors: Errors) -> dict:
    approver = approved_by or created_by
    if approver is not None and not has_capability(approver, "discounts.manage"):
        errors.add(
            "approved_by", f"{approver.email} may not approve pricing exceptions; only finance and admin users can."
        )
    if approver is None and not approved_label:
        errors.add("approved_by", "Say who approved the exception.")
    return {
        "approved_by": approver,
        "approved_label": "" if approver else approved_label[:200],
        "approved_at": timezone.now(),
    }


def _currency_of(contract, customer) -> str:
    if contract is not None:
        version = contract_terms_on(contract=contract, on=tenant_today())
        if version is not None:
            return version.currency
    return customer.currency


def _line_refs(contract) -> dict[str, str]:
    """line_ref -> kind over every version of the contract."""
    return dict(PriceLine.objects.filter(version__contract=contract).values_list("line_ref", "kind"))


def discount_create(
    *,
    kind: str,
    value: Decimal | None,
    start_date: date | None,
    reason: str,
    contract=None,
    customer=None,
    line_ref: str = "",
    end_date: date | None = None,
    max_cycles: int | None = None,
    no_expiry_reason: str = "",
    currency: str = "",
    created_by=None,
    approved_by=None,
    approved_label: str = "",
    via: str = "ui",
) -> Discount:
    errors = Errors()
    reason, no_expiry_reason, line_ref = (
        (reason or "").strip(),
        (no_expiry_reason or "").strip(),
        (line_ref or "").strip(),
    )
    if kind not in DiscountKind.values:
        errors.add("kind", "Choose percentage or fixed.")
    if value is None:
        errors.add("value", "Give the discount: a percentage (10 = 10 %) or, for fixed, the amount per billing cycle.")
    elif value <= 0:
        errors.add("value", "The discount must be greater than zero.")
    elif value > MAX_VALUE:
        errors.add("value", f"The discount is too large (at most {MAX_VALUE:,}).")
    elif kind == DiscountKind.PERCENTAGE and value > 100:
        errors.add("value", "A percentage discount cannot exceed 100.")
    if start_date is None:
        errors.add("start_date", "Give the first day the discount applies.")
    errors.dates_in_bounds(start_date=start_date, end_date=end_date)
    if end_date is not None and start_date is not None and end_date < start_date:
        errors.add("end_date", f"The end date {end_date:%-d %b %Y} is before the start date {start_date:%-d %b %Y}.")
    if max_cycles is not None and max_cycles < 1:
        errors.add("max_cycles", "The number of billing cycles must be at least 1.")
    if end_date is None and max_cycles is None and not no_expiry_reason:
        errors.add("end_date", NO_EXPIRY_HELP)
    if not reason:
        errors.add("reason", "Say why the discount is granted (e.g. launch offer, SLA breach).")
    if contract is None and customer is None:
        errors.add(
            "contract", "Name the contract (number or id) or the customer (external id or id) the discount is for."
        )
    if contract is not None and customer is not None and contract.customer_id != customer.pk:
        errors.add("customer", f"Contract {contract.number} belongs to another customer.")
    if line_ref and contract is None:
        errors.add("price_line", "A price-line discount also needs its contract.")
    if line_ref and contract is not None and line_ref not in _line_refs(contract):
        errors.add("price_line", f"Contract {contract.number} has no price line {line_ref!r}.")
    customer = customer or (contract.customer if contract is not None else None)
    if kind == DiscountKind.FIXED and customer is not None:
        expected = _currency_of(contract, customer)
        currency = (currency or expected).upper()
        if currency not in MINOR_UNITS:
            errors.add("currency", f"Unknown currency {currency!r}.")
        elif currency != expected:
            errors.add("currency", f"A fixed discount is in the currency it is billed in ({expected}), not {currency}.")
        elif value is not None and value > 0 and quantize(value, currency) != value:
            errors.add("value", f"A {currency} amount has at most {MINOR_UNITS[currency]} decimals.")
    elif kind == DiscountKind.PERCENTAGE:
        currency = ""
    approval = _approval(approved_by=approved_by, approved_label=approved_label, created_by=created_by, errors=errors)
    errors.raise_if_any()

    scope = (
        DiscountScope.PRICE_LINE
        if line_ref
        else (DiscountScope.CONTRACT if contract is not None else DiscountScope.CUSTOMER)
    )
    today = tenant_today()
    with transaction.atomic():
        discount = _created(
            Discount,
            created_by,
            kind=kind,
            value=value,
            currency=currency,
            scope=scope,
            customer=customer,
            contract=contract,
            line_ref=line_ref,
            start_date=start_date,
            end_date=end_date,
            max_cycles=max_cycles,
            no_expiry_reason=no_expiry_reason if (end_date is None and max_cycles is None) else "",
            status=discount_status_on(start=start_date, end=end_date, on=today),
            reason=reason[:500],
            created_by=created_by,
            created_via=via,
            **approval,
        )
        ExceptionEvent.objects.create(
            discount=discount,
            action=EventAction.CREATED,
            to_status=discount.status,
            effective_on=today,
            reason=reason[:500],
            **actor_fields(user=created_by, label=approved_label),
            detail={"approved_by": discount.approver},
        )
        _drafts_recompute(discount)
    return discount


def credit_create(
    *,
    customer,
    amount: Decimal | None,
    currency: str,
    reason: str,
    expires_on: date | None = None,
    no_expiry_reason: str = "",
    contract=None,
    pinned_invoices: list[str] | None = None,
    created_by=None,
    approved_by=None,
    approved_label: str = "",
    via: str = "ui",
) -> Credit:
    errors = Errors()
    reason, no_expiry_reason = (reason or "").strip(), (no_expiry_reason or "").strip()
    currency = (currency or (customer.currency if customer else "")).upper()
    if customer is None:
        errors.add("customer", "Name the customer (external id or id) the credit is for.")
    if contract is not None and customer is not None and contract.customer_id != customer.pk:
        errors.add("contract", f"Contract {contract.number} belongs to another customer.")
    if currency not in MINOR_UNITS:
        errors.add("currency", f"Unknown currency {currency!r}; use an ISO 4217 code such as USD.")
    if amount is None:
        errors.add("amount", 'Give the credit amount, e.g. "1000.00".')
    elif amount <= 0:
        errors.add("amount", "A credit must be greater than zero.")
    elif amount > MAX_VALUE:
        errors.add("amount", f"The credit is too large (at most {MAX_VALUE:,}).")
    elif currency in MINOR_UNITS and quantize(amount, currency) != amount:
        errors.add("amount", f"A {currency} amount has at most {MINOR_UNITS[currency]} decimals.")
    errors.dates_in_bounds(expires_on=expires_on)
    if expires_on is None and not no_expiry_reason:
        errors.add("expires_on", "Give the last day the credit can be used, or a written reason why it never expires.")
    if not reason:
        errors.add("reason", "Say why the credit is granted (e.g. SLA credit).")
    pins = [p.strip() for p in (pinned_invoices or []) if p and p.strip()]
    if any(len(p) > 60 for p in pins):
        errors.add("invoices", "An invoice name is at most 60 characters.")
    approval = _approval(approved_by=approved_by, approved_label=approved_label, created_by=created_by, errors=errors)
    errors.raise_if_any()
    today = tenant_today()
    with transaction.atomic():
        credit = _created(
            Credit,
            created_by,
            customer=customer,
            contract=contract,
            amount=amount,
            balance=amount,
            currency=currency,
            expires_on=expires_on,
            no_expiry_reason=no_expiry_reason if expires_on is None else "",
            pinned_invoices=pins,
            reason=reason[:500],
            status=CreditStatus.EXPIRED if expires_on is not None and expires_on < today else CreditStatus.ACTIVE,
            created_by=created_by,
            created_via=via,
            **approval,
        )
        ExceptionEvent.objects.create(
            credit=credit,
            action=EventAction.CREATED,
            to_status=credit.status,
            effective_on=today,
            reason=reason[:500],
            detail={"approved_by": credit.approver, "amount": str(amount)},
            **actor_fields(user=created_by, label=approved_label),
        )
    return credit


def price_override_create(
    *,
    contract,
    line_ref: str,
    rate: Decimal | None,
    start_date: date | None,
    end_date: date | None,
    reason: str,
    role: str = "",
    created_by=None,
    approved_by=None,
    approved_label: str = "",
    via: str = "ui",
) -> PriceOverride:
    errors = Errors()
    reason, line_ref, role = (reason or "").strip(), (line_ref or "").strip(), (role or "").strip()
    if contract is None:
        errors.add("contract", "Name the contract (number or id).")
    kinds = _line_refs(contract) if contract is not None else {}
    if contract is not None and line_ref not in kinds:
        errors.add("price_line", f"Contract {contract.number} has no price line {line_ref!r}.")
    elif kinds.get(line_ref) == "time_and_materials" and not role:
        errors.add("role", "A time-and-materials override names the rate-card role it replaces (e.g. engineer).")
    elif line_ref in kinds and kinds[line_ref] not in ("time_and_materials", "recurring", "usage"):
        errors.add("price_line", "Overrides replace recurring amounts, usage unit prices and hourly rates.")
    if rate is None or rate < 0:
        errors.add("rate", 'Give the custom rate (zero or more), e.g. "120.00".')
    elif rate > MAX_VALUE:
        errors.add("rate", f"The custom rate is too large (at most {MAX_VALUE:,}).")
    if start_date is None:
        errors.add("start_date", "Give the first day the custom rate applies.")
    errors.dates_in_bounds(start_date=start_date, end_date=end_date)
    if end_date is None:
        errors.add("end_date", "A custom rate needs an end date; after it the contract rate applies again.")
    elif start_date is not None and end_date < start_date:
        errors.add("end_date", f"The end date {end_date:%-d %b %Y} is before the start date {start_date:%-d %b %Y}.")
    if not reason:
        errors.add("reason", "Say why the custom rate was agreed.")
    approval = _approval(approved_by=approved_by, approved_label=approved_label, created_by=created_by, errors=errors)
    errors.raise_if_any()
    if (
        start_date
        and end_date
        and PriceOverride.objects.filter(
            contract=contract,
            line_ref=line_ref,
            role=role,
            start_date__lte=end_date,
            end_date__gte=start_date,
        )
        .exclude(status=ExceptionStatus.REVOKED)
        .exists()
    ):
        raise ValidationError(
            {
                "start_date": [
                    "Another custom rate for this line and role overlaps these dates; revoke or shorten it first."
                ]
            }
        )
    today = tenant_today()
    with transaction.atomic():
        override = _created(
            PriceOverride,
            created_by,
            contract=contract,
            customer_id=contract.customer_id,
            line_ref=line_ref,
            role=role,
            rate=rate,
            currency=_currency_of(contract, contract.customer),
            start_date=start_date,
            end_date=end_date,
            reason=reason[:500],
            status=discount_status_on(start=start_date, end=end_date, on=today),
            created_by=created_by,
            created_via=via,
            **approval,
        )
        ExceptionEvent.objects.create(
            price_override=override,
            action=EventAction.CREATED,
            to_status=override.status,
            effective_on=today,
            reason=reason[:500],
            detail={"approved_by": override.approver, "rate": str(rate)},
            **actor_fields(user=created_by, label=approved_label),
        )
    return override


# --------------------------------------------------------------------------- revoke and extend


def _model_for(kind: str):
    return {"discount": Discount, "credit": Credit, "override": PriceOverride}[kind]


def _subject(obj) -> dict:
    if isinstance(obj, Discount):
        return {"discount": obj}
    if isinstance(obj, Credit):
        return {"credit": obj}
    return {"price_override": obj}


def _drafts_recompute(obj) -> None:
    # Billing listens (billing.apps): the drafts the discount touches get their totals again.
    if isinstance(obj, Discount):
        discount_changed(discount=obj)


def exception_revoke(*, kind: str, pk: int, reason: str, user=None, actor_label: str = ""):
    """Stop an exception now: it applies to no invoice made from here on (drafts are recomputed)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why the exception is revoked; it is kept in its history."]})
    model = _model_for(kind)
    with transaction.atomic():
        obj = model.objects.select_for_update().get(pk=pk)
        if obj.status in ("revoked", "used"):
            raise ValidationError({"status": [f"{obj.reference} is already {obj.get_status_display().lower()}."]})
        previous = obj.status
        obj.status = "revoked"
        obj.revoked_at, obj.revoked_by, obj.revoke_reason = timezone.now(), user, reason[:500]
        obj._history_user = user
        obj.save(update_fields=["status", "revoked_at", "revoked_by", "revoke_reason"])
        ExceptionEvent.objects.create(
            action=EventAction.REVOKED,
            from_status=previous,
            to_status="revoked",
            effective_on=tenant_today(),
            reason=reason[:500],
            **_subject(obj),
            **actor_fields(user=user, label=actor_label),
        )
        _drafts_recompute(obj)
    return obj


def exception_extend(
    *,
    kind: str,
    pk: int,
    reason: str,
    end_date: date | None = None,
    max_cycles: int | None = None,
    user=None,
    actor_label: str = "",
):
    """Move an exception's expiry later (end date, expiry day, or more cycles), with a reason."""
    reason = (reason or "").strip()
    errors = Errors()
    if not reason:
        errors.add("reason", "Say why the exception is extended; it is kept in its history.")
    model = _model_for(kind)
    with transaction.atomic():
        obj = model.objects.select_for_update().get(pk=pk)
        if obj.status in ("revoked", "used"):
            errors.add("status", f"{obj.reference} is {obj.get_status_display().lower()} and cannot be extended.")
        date_field = "expires_on" if kind == "credit" else "end_date"
        old_end = getattr(obj, date_field)
        old_cycles = getattr(obj, "max_cycles", None)
        if end_date is None and max_cycles is None:
            errors.add(
                date_field, "Give the new end date" + (" or more billing cycles." if kind == "discount" else ".")
            )
        errors.dates_in_bounds(**{date_field: end_date})
        if end_date is not None:
            start = getattr(obj, "start_date", None)
            if old_end is not None and end_date <= old_end:
                errors.add(
                    date_field, f"Extending moves the end later than {old_end:%-d %b %Y}; to end earlier, revoke it."
                )
            elif start is not None and end_date < start:
                errors.add(date_field, f"The end date is before the start date {start}.")
        if max_cycles is not None:
            if kind != "discount":
                errors.add("max_cycles", "Only discounts count billing cycles.")
            elif old_cycles is None or max_cycles <= old_cycles:
                errors.add("max_cycles", f"Extending gives more cycles than {old_cycles or 'none'}.")
        errors.raise_if_any()
        fields: list[str] = []
        if end_date is not None:
            setattr(obj, date_field, end_date)
            fields.append(date_field)
        if max_cycles is not None:
            obj.max_cycles = max_cycles
            fields.append("max_cycles")
        previous = obj.status
        today = tenant_today()
        if kind == "credit":
            if obj.status == CreditStatus.EXPIRED and (obj.expires_on is None or obj.expires_on >= today):
                obj.status = CreditStatus.ACTIVE if obj.balance > 0 else CreditStatus.USED
        else:
            obj.status = status_after_change(obj, on=today)
        fields.append("status")
        obj._history_user = user
        obj.save(update_fields=fields)
        ExceptionEvent.objects.create(
            action=EventAction.EXTENDED,
            from_status=previous,
            to_status=obj.status,
            effective_on=today,
            reason=reason[:500],
            detail={
                "old_end": old_end.isoformat() if old_end else None,
                "new_end": end_date.isoformat() if end_date else None,
                "old_cycles": old_cycles,
                "new_cycles": max_cycles,
            },
            **_subject(obj),
            **actor_fields(user=user, label=actor_label),
        )
        _drafts_recompute(obj)
    return obj


def exception_end(*, kind: str, pk: int, end_date: date | None, reason: str, user=None, actor_label: str = ""):
    """Bring an exception's end forward: it applies up to and including ``end_date`` (today or
    later), then expires on the cycle. Invoices already made keep what they were given; drafts are
    recomputed. To stop it at once, revoke it; to move the end later, extend it."""
    reason = (reason or "").strip()
    errors = Errors()
    date_field = "expires_on" if kind == "credit" else "end_date"
    if not reason:
        errors.add("reason", "Say why the exception ends early; it is kept in its history.")
    if end_date is None:
        errors.add(date_field, "Give the last day it applies.")
    errors.dates_in_bounds(**{date_field: end_date})
    model = _model_for(kind)
    with transaction.atomic():
        obj = model.objects.select_for_update().get(pk=pk)
        if obj.status in ("revoked", "used", "expired"):
            errors.add("status", f"{obj.reference} is {obj.get_status_display().lower()} already.")
        today = tenant_today()
        old_end = getattr(obj, date_field)
        start = getattr(obj, "start_date", None)
        if end_date is not None and not errors.get(date_field):
            if end_date < today:
                errors.add(
                    date_field,
                    f"{end_date:%-d %b %Y} is in the past; invoices may already have used it. To stop it now, revoke it.",
                )
            elif start is not None and end_date < start:
                errors.add(date_field, f"It starts on {start:%-d %b %Y}; to cancel it before then, revoke it.")
            elif old_end is not None and end_date >= old_end:
                errors.add(
                    date_field, f"It already ends on {old_end:%-d %b %Y}; to move the end later, extend it instead."
                )
        errors.raise_if_any()
        setattr(obj, date_field, end_date)
        previous = obj.status
        if kind != "credit":
            obj.status = status_after_change(obj, on=today)
        obj._history_user = user
        obj.save(update_fields=[date_field, "status"])
        ExceptionEvent.objects.create(
            action=EventAction.ENDED_EARLY,
            from_status=previous,
            to_status=obj.status,
            effective_on=today,
            reason=reason[:500],
            detail={
                "old_end": old_end.isoformat() if old_end else None,
                "new_end": end_date.isoformat(),
            },
            **_subject(obj),
            **actor_fields(user=user, label=actor_label),
        )
        _drafts_recompute(obj)
    return obj
