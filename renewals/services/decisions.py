"""An account manager's decision on a renewal alert."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from contracts.models import Contract, ContractStatus
from renewals.models import PERSON_DECISIONS, DecisionKind, RenewalAlert, RenewalDecision, RenewalStatus
from renewals.services._common import contract_lock, stamp, tenant_today
from renewals.services.terms import RenewalTerms, contract_renew
from revexos.accounts.models import Role
from revexos.accounts.roles import has_capability
from revexos.parsing import DATE_MAX, parse_decimal, parse_int

MAX_TERM_MONTHS = 120
MAX_UPLIFT_PCT = Decimal(100)


def proposed_terms_clean(proposed: dict[str, Any] | None) -> dict[str, Any]:
    """{"term_months": int, "uplift_pct": "5"} with only what was given; errors name the field."""
    proposed = proposed or {}
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    months = proposed.get("term_months")
    if months not in (None, ""):
        try:
            months = parse_int(months)
        except ValueError:
            months = None
        if months is None or not 1 <= months <= MAX_TERM_MONTHS:
            errors["term_months"] = [f"Enter a renewal term in whole months from 1 to {MAX_TERM_MONTHS}."]
        else:
            clean["term_months"] = months
    uplift = proposed.get("uplift_pct")
    if uplift not in (None, ""):
        try:
            value = parse_decimal(uplift if isinstance(uplift, (int, Decimal)) else str(uplift))
        except ValueError:
            value = None
        if value is None or not Decimal(0) <= value <= MAX_UPLIFT_PCT:
            errors["uplift_pct"] = [f"Enter the uplift as a percentage from 0 to {MAX_UPLIFT_PCT}, e.g. 5 or 3.5."]
        else:
            clean["uplift_pct"] = f"{value.normalize():f}"
    if errors:
        raise ValidationError(errors)
    return clean


def renewal_alert_check_access(*, alert: RenewalAlert, user) -> None:
    """Deciding needs renewals.decide; an account manager decides only the alerts they own."""
    if not has_capability(user, "renewals.decide"):
        raise PermissionDenied("Your role can read renewals but not record decisions.")
    if user.role == Role.ACCOUNT_MANAGER and alert.owner_id not in (None, user.pk):
        raise PermissionDenied(
            "This renewal belongs to another account manager; ask them or an admin to record the decision."
        )


def renewal_decide(
    *,
    alert: RenewalAlert,
    decision: str,
    note: str,
    user,
    proposed_terms: dict | None = None,
    snooze_until: date | None = None,
    today: date | None = None,
    actor_label: str = "",
) -> RenewalAlert:
    """Record ``decision`` on ``alert`` with ``note``; *renewed* writes the next term right away.

    * renewing — negotiating; ``proposed_terms`` (term months, uplift %) that differ from the
      contract's own stop the auto-renewal, since the account manager will record *renewed* on them.
    * renewed — a new version from the day after the end date with the uplift, end date moved.
    * churning — the customer is leaving: no auto-renewal; the contract expires at its end date.
    * churned — final; the contract expires at its end date (at once if that has passed).
    * snoozed — out of the queue until ``snooze_until`` (escalation still happens).

    ``user`` is the person deciding (their role is checked); an API key decides as the workspace
    (``user`` None) and is named in ``actor_label`` in the alert's history.
    """
    today = today or tenant_today()
    errors: dict[str, list[str]] = {}
    if decision not in PERSON_DECISIONS:
        errors["decision"] = [f"Choose one of: {', '.join(str(d) for d in PERSON_DECISIONS)}."]
    note = (note or "").strip()
    if not note:
        errors["note"] = ["Add a note: what was agreed, or why."]
    clean_terms: dict[str, Any] = {}
    try:
        clean_terms = proposed_terms_clean(proposed_terms)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if decision == DecisionKind.SNOOZED:
        if snooze_until is None:
            errors["snooze_until"] = ["Choose the date the alert comes back to the queue."]
        elif snooze_until <= today:
            errors["snooze_until"] = ["Snooze until a date after today."]
        elif snooze_until > alert.end_date or snooze_until > DATE_MAX:
            errors["snooze_until"] = [f"Snooze until the end date ({alert.end_date.isoformat()}) at the latest."]
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        contract_lock(alert.contract_id)
        contract = Contract.objects.select_for_update().get(pk=alert.contract_id)
        alert = RenewalAlert.objects.select_for_update().get(pk=alert.pk)
        if user is not None:
            renewal_alert_check_access(alert=alert, user=user)
        if alert.status in (RenewalStatus.RENEWED, RenewalStatus.AUTO_RENEWED, RenewalStatus.CHURNED):
            raise ValidationError(
                {
                    "decision": [
                        f"This renewal is already {alert.get_status_display().lower()}; the next term gets its own alert."
                    ]
                }
            )
        now = timezone.now()
        if decision == DecisionKind.RENEWED:
            if contract.end_date != alert.end_date:
                raise ValidationError(
                    {"decision": ["The contract's end date changed since this alert was raised; refresh the queue."]}
                )
            # A renewed decision applies the terms proposed earlier unless new ones are given.
            terms = RenewalTerms.of(contract, clean_terms or alert.proposed_terms)
            alert.renewal_version = contract_renew(contract=contract, terms=terms, user=user, note=f"Renewed: {note}")
            clean_terms = {"term_months": terms.term_months, "uplift_pct": f"{terms.uplift_pct.normalize():f}"}
        elif (
            decision == DecisionKind.CHURNED
            and contract.end_date is not None
            and contract.end_date < today
            and contract.status == ContractStatus.ACTIVE
        ):
            contract.status = ContractStatus.EXPIRED
            stamp(contract, user=user, note=f"Churned: {note}")
            contract.save(update_fields=["status", "updated_at"])
        alert.status = decision
        alert.decision_note = note
        alert.decided_at, alert.decided_by = now, user
        alert.snoozed_until = snooze_until if decision == DecisionKind.SNOOZED else None
        if decision in (DecisionKind.RENEWING, DecisionKind.RENEWED):
            alert.proposed_terms = clean_terms
        stamp(alert, user=user, note=f"{decision}: {note}" + (f" ({actor_label})" if actor_label else ""))
        alert.save()
        RenewalDecision.objects.create(
            alert=alert,
            decision=decision,
            note=note,
            proposed_terms=clean_terms,
            decided_by=user,
            decided_at=now,
            decided_on=today,
            snooze_until=alert.snoozed_until,
        )
    return alert
