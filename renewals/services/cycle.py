"""The renewals part of the scheduler's cycle (DESIGN.md §4 triggers, §5 POST /api/v1/runs)."""

from __future__ import annotations

from datetime import date

from renewals.services.alerts import renewal_alerts_escalate_due, renewal_alerts_raise_due, renewal_alerts_reopen_due
from renewals.services.terms import contract_auto_renew_due, contract_expire_due


def renewals_cycle_step(*, as_of: date, contract_ids: list[int] | None = None) -> dict:
    """Raise, reopen, escalate, auto-renew, expire — in that order, each idempotent, as of a date.

    Order matters on a catch-up day: a term is raised before it can escalate or renew, and
    auto-renewal runs before expiry so an auto-renew contract is renewed, not expired.
    ``contract_ids`` is accepted for the cycle registry's signature; renewals work set-based on the
    whole tenant (a day's alerts are few).
    """
    raised = renewal_alerts_raise_due(as_of=as_of)
    reopened = renewal_alerts_reopen_due(as_of=as_of)
    escalated = renewal_alerts_escalate_due(as_of=as_of)
    renewed = contract_auto_renew_due(as_of=as_of)
    expired = contract_expire_due(as_of=as_of)
    return {
        "renewal_alerts_raised": len(raised),
        "renewal_alerts_reopened": len(reopened),
        "renewal_alerts_escalated": len(escalated),
        "contracts_auto_renewed": len(renewed),
        "contracts_expired": len(expired),
        "ids": {
            "raised": raised,
            "reopened": reopened,
            "escalated": escalated,
            "auto_renewed": renewed,
            "expired": expired,
        },
    }
