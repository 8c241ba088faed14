"""Read queries for leakage findings: the list (UI and API), totals by rule, one finding."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from insights.leakage import RULE_DEFINITIONS
from insights.models import LIVE_STATUSES, LeakageFinding, LeakageRule
from revexos.parsing import parse_id


def leakage_finding_list(*, rule: str = "", status: str = "", contract: str = "") -> QuerySet[LeakageFinding]:
    """Findings largest first; ``status`` ``live`` = open or acknowledged; ``contract`` by number or id."""
    findings = LeakageFinding.objects.select_related("contract", "customer", "invoice", "review_task")
    if rule:
        findings = findings.filter(rule=rule)
    if status == "live":
        findings = findings.filter(status__in=LIVE_STATUSES)
    elif status:
        findings = findings.filter(status=status)
    if contract:
        q = Q(contract__number__iexact=contract)
        if (contract_id := parse_id(contract)) is not None:
            q |= Q(contract_id=contract_id)
        findings = findings.filter(q)
    return findings.order_by("-amount", "rule", "-id")


@dataclass
class RuleTotal:
    rule: str
    name: str
    count: int = 0
    amounts: dict[str, Decimal] = field(default_factory=dict)  # currency -> amount


def leakage_totals_by_rule(*, status: str = "live", contract: str = "") -> list[RuleTotal]:
    """Count and amount per rule and currency in one query; every rule listed, found or not."""
    rows = (
        leakage_finding_list(status=status, contract=contract)
        .order_by()
        .values("rule", "currency")
        .annotate(n=Count("id"), total=Sum("amount"))
    )
    by_rule: dict[str, RuleTotal] = {r: RuleTotal(rule=r, name=RULE_DEFINITIONS[r]["name"]) for r in LeakageRule.values}
    for row in rows:
        total = by_rule[row["rule"]]
        total.count += row["n"]
        total.amounts[row["currency"]] = total.amounts.get(row["currency"], Decimal(0)) + row["total"]
    return list(by_rule.values())


def leakage_grand_totals(totals: list[RuleTotal]) -> dict[str, Decimal]:
    result: dict[str, Decimal] = defaultdict(Decimal)
    for total in totals:
        for currency, amount in total.amounts.items():
            result[currency] += amount
    return dict(sorted(result.items()))


def leakage_finding_detail(*, pk: int) -> LeakageFinding:
    return LeakageFinding.objects.select_related(
        "contract",
        "contract__customer",
        "customer",
        "invoice",
        "review_task",
        "status_changed_by",
    ).get(pk=pk)


def findings_of_review_tasks(tasks) -> dict[int, list[tuple[str, str]]]:
    """The finding each leakage review task is about, as (label, url): one query for a page of tasks."""
    from django.urls import reverse

    ids = [t.pk for t in tasks if t.kind == "leakage"]
    if not ids:
        return {}
    found: dict[int, list[tuple[str, str]]] = {}
    for pk, rule, task_id in LeakageFinding.objects.filter(review_task_id__in=ids).values_list(
        "pk", "rule", "review_task_id"
    ):
        found.setdefault(task_id, []).append((f"{rule} finding", reverse("leakage:detail", args=[pk])))
    return found
