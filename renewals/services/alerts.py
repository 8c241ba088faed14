"""The renewal-window and notice-deadline triggers (DESIGN.md §4).

Each is a query for what is due and not yet done, so a cycle that runs late catches up and a cycle
that runs twice finds nothing more to do.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import DateField, Exists, ExpressionWrapper, F, IntegerField, OuterRef, Prefetch, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from billing.models import InvoiceLine, InvoiceLineKind, InvoiceStatus
from contracts.models import Contract, ContractStatus, ContractVersion, PriceLine
from renewals.models import UNDECIDED_STATUSES, DecisionKind, RenewalAlert, RenewalDecision, RenewalStatus
from renewals.services import notify
from renewals.services._common import current_tenant, step_lock
from renewals.valuation import RUN_RATE_MONTHS, renewal_value, stake_value
from revexos.pricing import add_months
from revexos.webhooks.publish import events_publish_many

# An alert escalates once when its notice deadline is this close (or already past) with no decision.
ESCALATION_LEAD_DAYS = 7
CHUNK = 500
ZERO = Decimal(0)
# Versions written by a renewal (renewals/services/terms.py names them "Renewal <start> – <end> …").
RENEWAL_REASON_PREFIXES = ("Renewal ",)
RUN_RATE_KINDS = (
    InvoiceLineKind.USAGE,
    InvoiceLineKind.USAGE_MINIMUM,
    InvoiceLineKind.TIME_AND_MATERIALS,
    InvoiceLineKind.OVERAGE,
)


def _window_days(tenant_window: int):
    """The window of each contract in SQL, as ``Contract.renewal_window_for`` computes it: the contract's window
    (else the tenant's), or notice period + lead time when that is longer."""
    return Greatest(
        Coalesce(F("renewal_window_days"), Value(tenant_window)),
        F("notice_period_days") + F("renewal_lead_days"),
        output_field=IntegerField(),
    )


def _due_contracts(*, as_of: date, tenant_window: int):
    """Active contracts whose window has opened (end − window ≤ as_of) with no alert for this term."""
    day = timedelta(days=1)
    window_opens = ExpressionWrapper(F("end_date") - _window_days(tenant_window) * day, output_field=DateField())
    return (
        Contract.objects.filter(status=ContractStatus.ACTIVE, end_date__isnull=False)
        .annotate(window_opens=window_opens)
        .filter(window_opens__lte=as_of)
        .filter(~Exists(RenewalAlert.objects.filter(contract=OuterRef("pk"), end_date=OuterRef("end_date"))))
        .select_related("customer")
        .prefetch_related(
            Prefetch(
                "versions",
                queryset=ContractVersion.objects.order_by("effective_from").prefetch_related(
                    Prefetch("price_lines", queryset=PriceLine.objects.order_by("position", "id"))
                ),
            )
        )
        .order_by("pk")
    )


def run_rates(contracts: list[Contract], *, as_of: date) -> dict[int, Decimal]:
    """Usage, hours and overage billed per month lately, by contract, in one query: the invoice
    lines of the ``RUN_RATE_MONTHS`` months before last month (months the contract ran). Last month
    is left out: its usage and hours are billed when it closes, often after the alert (the
    renewals step runs before billing in the cycle)."""
    if not contracts:
        return {}
    this_month = add_months(as_of.replace(day=1), -1)  # the months counted end before this one
    first = add_months(this_month, -RUN_RATE_MONTHS)
    billed = dict(
        InvoiceLine.objects.filter(
            contract_id__in=[c.pk for c in contracts],
            kind__in=RUN_RATE_KINDS,
            period_start__gte=first,
            period_start__lt=this_month,
        )
        .exclude(invoice__status=InvoiceStatus.VOID)
        .values("contract_id")
        .annotate(total=Sum("amount"))
        .values_list("contract_id", "total")
    )
    rates: dict[int, Decimal] = {}
    for contract in contracts:
        total = billed.get(contract.pk)
        if not total:
            continue
        ran_from = max(first, contract.start_date.replace(day=1))
        months = max((this_month.year - ran_from.year) * 12 + this_month.month - ran_from.month, 1)
        rates[contract.pk] = total / months
    return rates


def _version_on(versions: list[ContractVersion], day: date) -> ContractVersion | None:
    # Same rule as contracts.selectors.contract_terms_on, over prefetched rows.
    chosen = None
    for version in versions:
        if version.effective_from <= day:
            chosen = version
    return chosen or (versions[0] if versions else None)


def alert_for(
    contract: Contract, *, as_of: date, tenant_window: int, now, run_rate: Decimal | None = None
) -> RenewalAlert:
    """The alert for ``contract``'s current term, valued on ``as_of`` (not saved). ``run_rate``:
    the contract's usage and hours billed per month (``run_rates``); read here when not given."""
    window = contract.renewal_window_for(tenant_window)
    versions = list(contract.versions.all())
    version = _version_on(versions, as_of)
    currency = version.currency if version is not None else contract.customer.currency
    lines = list(version.price_lines.all()) if version is not None else []
    value = renewal_value(
        lines=lines,
        currency=currency,
        contract_start=contract.start_date,
        end=contract.end_date,
        anchor=version.billing_anchor if version is not None else "calendar",
        as_of=max(as_of, contract.start_date),
    )
    if value.annual_recurring <= 0 and run_rate is None:
        run_rate = run_rates([contract], as_of=as_of).get(contract.pk, ZERO)
    stake = stake_value(
        annual_recurring=value.annual_recurring,
        lines=lines,
        currency=currency,
        term_start=_term_start(contract, versions),
        term_end=contract.end_date,
        run_rate_per_month=run_rate or ZERO,
    )
    window_start = contract.end_date - timedelta(days=window)
    return RenewalAlert(
        contract=contract,
        end_date=contract.end_date,
        raised_at=now,
        raised_on=as_of,
        window_days=window,
        window_start=window_start,
        notice_deadline=contract.end_date - timedelta(days=contract.notice_period_days),
        currency=currency,
        annual_recurring_value=value.annual_recurring,
        remaining_value=value.remaining,
        value_at_stake=stake.amount,
        value_basis=stake.basis,
        value_parts=stake.parts_json(),
        owner_id=contract.owner_id or contract.customer.owner_id,
        status=RenewalStatus.OPEN,
    )


def _term_start(contract: Contract, versions: list[ContractVersion]) -> date:
    """The first day of the current term: the day after the last renewal, else the contract's start."""
    renewed = [v.effective_from for v in versions if v.reason.startswith(RENEWAL_REASON_PREFIXES)]
    return max(renewed, default=contract.start_date)


@transaction.atomic
def renewal_alerts_raise_due(*, as_of: date) -> list[int]:
    """Raise the alert of every contract term whose renewal window has opened by ``as_of``.

    Returns the ids of the alerts raised now. The owner is the contract's owner, else the
    customer's account manager. Owners are e-mailed once the transaction commits.
    """
    step_lock("raise")
    tenant_window = current_tenant().renewal_window_days
    now = timezone.now()
    raised: list[RenewalAlert] = []
    due = list(_due_contracts(as_of=as_of, tenant_window=tenant_window))
    for start in range(0, len(due), CHUNK):
        chunk = due[start : start + CHUNK]
        rates = run_rates(chunk, as_of=as_of)  # one query per chunk, used where nothing recurs
        for contract in chunk:
            raised.append(
                alert_for(
                    contract, as_of=as_of, tenant_window=tenant_window, now=now, run_rate=rates.get(contract.pk, ZERO)
                )
            )
    if not raised:
        return []
    # Under the lock no other cycle can insert the same term; the unique constraint still guards it.
    created = bulk_create_with_history(
        raised, RenewalAlert, batch_size=CHUNK, default_change_reason="Renewal window opened"
    )
    ids = [alert.pk for alert in created]
    numbers = dict(Contract.objects.filter(pk__in=[a.contract_id for a in created]).values_list("pk", "number"))
    events_publish_many(
        "renewal_alert.raised",
        [
            (
                {
                    "renewal_alert": {
                        "id": str(a.pk),
                        "contract": numbers.get(a.contract_id),
                        "end_date": a.end_date.isoformat(),
                        "notice_deadline": a.notice_deadline.isoformat(),
                        "currency": a.currency,
                        "annual_recurring_value": str(a.annual_recurring_value),
                        "value_at_stake": str(a.value_at_stake),
                        "value_basis": a.value_basis,
                    }
                },
                f"renewal_alert.raised:{a.pk}",
            )
            for a in created
        ],
    )
    transaction.on_commit(lambda: notify.alerts_raised_notify(alert_ids=ids, as_of=as_of))
    return ids


@transaction.atomic
def renewal_alerts_escalate_due(*, as_of: date) -> list[int]:
    """Escalate, once, every undecided alert whose notice deadline is within a week or past.

    Snoozing is not a decision: a snoozed alert escalates too, and comes back to the queue as open
    (a snooze cannot hide a renewal past its notice deadline). Escalation e-mails the owner and the
    tenant's admins after commit.
    """
    step_lock("escalate")
    now = timezone.now()
    due = list(
        RenewalAlert.objects.select_for_update()
        .filter(
            status__in=UNDECIDED_STATUSES,
            escalated_at__isnull=True,
            notice_deadline__lte=as_of + timedelta(days=ESCALATION_LEAD_DAYS),
            # A term that already ended is handled by auto-renewal or expiry, not escalation.
            end_date__gte=as_of,
        )
        .order_by("pk")
    )
    if not due:
        return []
    for alert in due:
        alert.escalated_at = now
        alert.status = RenewalStatus.OPEN
        alert._change_reason = "Notice deadline near with no decision"
    bulk_update_with_history(
        due, RenewalAlert, ["escalated_at", "status"], batch_size=CHUNK, default_change_reason="Escalated"
    )
    RenewalDecision.objects.bulk_create(
        [
            RenewalDecision(
                alert=alert,
                decision=DecisionKind.ESCALATED,
                decided_at=now,
                decided_on=as_of,
                note=f"Notice deadline {alert.notice_deadline.isoformat()} with no decision.",
            )
            for alert in due
        ]
    )
    ids = [alert.pk for alert in due]
    transaction.on_commit(lambda: notify.alerts_escalated_notify(alert_ids=ids, as_of=as_of))
    return ids


@transaction.atomic
def renewal_alerts_reopen_due(*, as_of: date) -> list[int]:
    """Snoozes that have run out put their alert back in the queue as open."""
    step_lock("reopen")
    now = timezone.now()
    due = list(
        RenewalAlert.objects.select_for_update()
        .filter(status=RenewalStatus.SNOOZED, snoozed_until__lte=as_of)
        .order_by("pk")
    )
    for alert in due:
        alert.status = RenewalStatus.OPEN
    if due:
        bulk_update_with_history(due, RenewalAlert, ["status"], batch_size=CHUNK, default_change_reason="Snooze ended")
        RenewalDecision.objects.bulk_create(
            [
                RenewalDecision(
                    alert=a,
                    decision=DecisionKind.REOPENED,
                    decided_at=now,
                    decided_on=as_of,
                    note=f"Snoozed until {a.snoozed_until.isoformat()}.",
                )
                for a in due
            ]
        )
    return [alert.pk for alert in due]
