"""Carrying a contract into its next term, and ending it when it does not renew.

A renewal is a new ContractVersion effective the day after the end date, with every price of the
carried lines raised by the uplift, and the contract's end date moved to the end of the new term.
Billing needs nothing else: it bills each period at the version in force at the period's start and
stops at the end date, so the new term bills at the new prices from its first day.

A contract that does not renew keeps its end date and becomes *expired* the day after it: billing
periods are clipped to the end date, so recurring billing stops, while expired contracts stay
billable for what they delivered (final time & materials and usage of the last period).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from contracts.models import Contract, ContractStatus, ContractVersion
from renewals.models import DecisionKind, RenewalAlert, RenewalDecision, RenewalStatus
from renewals.services import notify
from renewals.services._common import contract_lock, stamp, step_lock
from renewals.valuation import (
    AMOUNT_FIELDS,
    CARRIED_KINDS,
    RATE_FIELDS,
    TIER_AMOUNT_FIELDS,
    TIER_UNIT_PRICE_FIELDS,
    UNIT_PRICE_FIELDS,
    next_term,
    uplift_fields,
)

_SKIP_COPY = {"id", "version", "version_id", "price_line", "price_line_id"}


@dataclass(frozen=True)
class RenewalTerms:
    term_months: int
    uplift_pct: Decimal

    @classmethod
    def of(cls, contract: Contract, proposed: dict | None = None) -> RenewalTerms:
        """The contract's own renewal terms, overridden by what was proposed (renewing decision)."""
        proposed = proposed or {}
        return cls(
            term_months=int(proposed.get("term_months") or contract.renewal_term_months),
            uplift_pct=Decimal(str(proposed.get("uplift_pct")))
            if proposed.get("uplift_pct") not in (None, "")
            else Decimal(contract.renewal_uplift_pct),
        )

    def differs_from(self, contract: Contract) -> bool:
        return self != RenewalTerms.of(contract)


def _copy(obj, **changes):
    values = {
        f.attname: getattr(obj, f.attname)
        for f in obj._meta.concrete_fields
        if f.attname not in _SKIP_COPY and not f.primary_key
    }
    values.update(changes)
    return type(obj)(**values)


def contract_renew(*, contract: Contract, terms: RenewalTerms, user=None, note: str = "") -> ContractVersion:
    """Write the next term: a version from end+1 with uplifted prices, and the new end date.

    Runs inside the caller's transaction, with the contract row locked by the caller.
    """
    if contract.end_date is None:
        raise ValidationError({"contract": ["An open-ended contract has no term to renew."]})
    start, end = next_term(end=contract.end_date, term_months=terms.term_months)
    previous = (
        ContractVersion.objects.filter(contract=contract, effective_from__lte=contract.end_date)
        .order_by("-effective_from")
        .first()
        or ContractVersion.objects.filter(contract=contract).order_by("effective_from").first()
    )
    if previous is None:
        raise ValidationError(
            {"contract": ["The contract has no terms to renew; add a version with price lines first."]}
        )
    if ContractVersion.objects.filter(contract=contract, effective_from__gt=contract.end_date).exists():
        raise ValidationError({"contract": ["The contract already has terms after its end date; amend those instead."]})
    number = (
        ContractVersion.objects.filter(contract=contract).order_by("-version").values_list("version", flat=True).first()
        or 0
    ) + 1
    pct, currency = terms.uplift_pct, previous.currency
    reason = (
        f"Renewal {start.isoformat()} – {end.isoformat()} ({terms.term_months} months, uplift {pct.normalize():f} %)"
    )
    note = note or reason
    version = _copy(
        previous,
        version=number,
        effective_from=start,
        reason=reason[:500],
        created_by=user if getattr(user, "is_authenticated", False) else None,
        created_at=timezone.now(),
    )
    stamp(version, user=user, note=note)
    version.save()
    for line in (
        previous.price_lines.filter(kind__in=CARRIED_KINDS)
        .prefetch_related("tiers", "rates")
        .order_by("position", "id")
    ):
        new_line = _copy(
            line,
            version=version,
            **uplift_fields(
                line,
                amount_fields=AMOUNT_FIELDS,
                unit_fields=UNIT_PRICE_FIELDS,
                pct=pct,
                currency=currency,
            ),
        )
        stamp(new_line, user=user, note=note)
        new_line.save()
        for tier in line.tiers.all():
            new_tier = _copy(
                tier,
                price_line=new_line,
                **uplift_fields(
                    tier,
                    amount_fields=TIER_AMOUNT_FIELDS,
                    unit_fields=TIER_UNIT_PRICE_FIELDS,
                    pct=pct,
                    currency=currency,
                ),
            )
            stamp(new_tier, user=user, note=note)
            new_tier.save()
        for rate in line.rates.all():
            new_rate = _copy(
                rate,
                price_line=new_line,
                **uplift_fields(
                    rate,
                    amount_fields=RATE_FIELDS,
                    unit_fields=(),
                    pct=pct,
                    currency=currency,
                ),
            )
            stamp(new_rate, user=user, note=note)
            new_rate.save()
    contract.end_date = end
    contract.status = ContractStatus.ACTIVE  # a late decision brings an expired contract back
    stamp(contract, user=user, note=note)
    contract.save(update_fields=["end_date", "status", "updated_at"])
    return version


# The alert states that stop an auto-renewal: the account manager said no, or is negotiating other terms.
_BLOCKING = (RenewalStatus.CHURNING, RenewalStatus.CHURNED, RenewalStatus.RENEWED, RenewalStatus.AUTO_RENEWED)


def _auto_renew_blocked(alert: RenewalAlert | None, contract: Contract) -> bool:
    if alert is None:
        return False
    if alert.status in _BLOCKING:
        return True
    if alert.status == RenewalStatus.RENEWING and alert.proposed_terms:
        return RenewalTerms.of(contract, alert.proposed_terms).differs_from(contract)
    return False


def contract_auto_renew_due(*, as_of: date) -> list[int]:
    """Renew, once per term, every active auto-renew contract whose end date has come.

    Returns the ids of the contracts renewed. Each contract renews in its own transaction (one
    failing contract does not hold back the others); the owner is e-mailed after commit.
    """
    candidate_ids = list(
        Contract.objects.filter(
            status=ContractStatus.ACTIVE, auto_renew=True, end_date__isnull=False, end_date__lte=as_of
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    renewed: list[int] = []
    for contract_id in candidate_ids:
        if _auto_renew_one(contract_id=contract_id, as_of=as_of):
            renewed.append(contract_id)
    return renewed


@transaction.atomic
def _auto_renew_one(*, contract_id: int, as_of: date) -> bool:
    contract_lock(contract_id)
    contract = Contract.objects.select_for_update().get(pk=contract_id)
    # Re-checked under the lock: another cycle may have renewed it a moment ago.
    if not (
        contract.status == ContractStatus.ACTIVE
        and contract.auto_renew
        and contract.end_date
        and contract.end_date <= as_of
    ):
        return False
    alert = RenewalAlert.objects.select_for_update().filter(contract=contract, end_date=contract.end_date).first()
    if _auto_renew_blocked(alert, contract):
        return False
    now = timezone.now()
    if alert is None:
        # The cycle raises alerts first, so this only happens when auto-renewal runs on its own:
        # the term still gets its one alert, so the decision log has somewhere to live.
        from renewals.services._common import current_tenant
        from renewals.services.alerts import alert_for

        alert = alert_for(contract, as_of=as_of, tenant_window=current_tenant().renewal_window_days, now=now)
        stamp(alert, note="Raised at auto-renewal")
        alert.save()
    old_end = contract.end_date
    terms = RenewalTerms.of(contract, alert.proposed_terms)
    version = contract_renew(contract=contract, terms=terms, note=f"Auto-renewed at end date {old_end.isoformat()}")
    alert.status = RenewalStatus.AUTO_RENEWED
    alert.renewal_version = version
    alert.decided_at = now
    stamp(alert, note="Auto-renewed")
    alert.save(update_fields=["status", "renewal_version", "decided_at"])
    RenewalDecision.objects.create(
        alert=alert,
        decision=DecisionKind.AUTO_RENEWED,
        decided_at=now,
        decided_on=as_of,
        proposed_terms={"term_months": terms.term_months, "uplift_pct": f"{terms.uplift_pct.normalize():f}"},
        note=f"Renewed for {terms.term_months} months to {contract.end_date.isoformat()} with {terms.uplift_pct.normalize():f} % uplift (version {version.version}).",
    )
    transaction.on_commit(lambda: notify.auto_renewed_notify(alert_id=alert.pk))
    return True


@transaction.atomic
def contract_expire_due(*, as_of: date) -> list[int]:
    """End, the day after their end date, the contracts that are not renewing.

    Expires an active contract past its end date when it does not auto-renew or its alert says
    churning/churned; an alert left undecided becomes churned ("lapsed"). A contract whose renewal
    is being negotiated (renewing) stays active: it is the queue's most urgent row, not churn.
    Returns the ids of the contracts expired.
    """
    step_lock("expire")
    now = timezone.now()
    past = Contract.objects.select_for_update().filter(status=ContractStatus.ACTIVE, end_date__lt=as_of)
    alerts = {
        a.contract_id: a
        for a in RenewalAlert.objects.select_for_update()
        .filter(
            contract__in=past,
            end_date__lt=as_of,
        )
        .filter(contract__end_date=F("end_date"))
    }
    expired: list[Contract] = []
    closed_alerts: list[RenewalAlert] = []
    for contract in past.order_by("pk"):
        alert = alerts.get(contract.pk)
        status = alert.status if alert is not None else None
        if status in (RenewalStatus.RENEWING, RenewalStatus.RENEWED, RenewalStatus.AUTO_RENEWED):
            continue
        if contract.auto_renew and status not in (RenewalStatus.CHURNING, RenewalStatus.CHURNED):
            continue  # contract_auto_renew_due renews it
        contract.status = ContractStatus.EXPIRED
        contract._change_reason = f"Ended {contract.end_date.isoformat()} without renewal"
        expired.append(contract)
        if alert is not None and status != RenewalStatus.CHURNED:
            alert._lapsed = status != RenewalStatus.CHURNING
            alert.status = RenewalStatus.CHURNED
            alert.decided_at = alert.decided_at or now
            closed_alerts.append(alert)
    if expired:
        bulk_update_with_history(
            expired, Contract, ["status"], batch_size=500, default_change_reason="Expired at end date"
        )
        Contract.objects.filter(pk__in=[c.pk for c in expired]).update(updated_at=now)
    if closed_alerts:
        bulk_update_with_history(
            closed_alerts,
            RenewalAlert,
            ["status", "decided_at"],
            batch_size=500,
            default_change_reason="Term ended without renewal",
        )
        RenewalDecision.objects.bulk_create(
            [
                RenewalDecision(
                    alert=a,
                    decision=DecisionKind.LAPSED if a._lapsed else DecisionKind.CHURNED,
                    decided_at=now,
                    decided_on=as_of,
                    note=f"The term ended on {a.end_date.isoformat()}; the contract expired.",
                )
                for a in closed_alerts
            ]
        )
    return [c.pk for c in expired]
