"""A finding's evidence as a person reads it: dates, money and quantities formatted, ids linked.

The rules (``insights/leakage.py``) store evidence as plain JSON — ISO dates, decimal strings, ids —
so the API and the audit trail keep exact values. This module is the one place that turns those
rows into what a finance user reads on the finding page: ``2027-01-22`` → ``22 Jan 2027``,
``63520.00`` → ``63,520.00``, ``37.500000`` hours → ``37.5 h``, ``2400000`` api_calls →
``2,400,000 api_calls``, and a renewal alert, invoice, discount or milestone id → a link to it.

How a column reads is decided by its name (the rules use the same names for the same things);
the few names that mean two things are told apart by their value (an id is an integer, money a
decimal string).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.urls import reverse
from django.utils import timezone

from revexos.money import format_money, minor_units

DATE_KEYS = {
    "work_date",
    "day",
    "start_date",
    "end_date",
    "period_start",
    "period_end",
    "notice_deadline",
    "window_start",
    "window_end",
    "fixed_fee_billed_on",
    "delivered_at",
    "first_day",
    "last_day",
    "billing_date",
    "issue_date",
    "expected_date",
}
MONEY_KEYS = {
    "amount",
    "given_up",
    "difference",
    "fixed_fee_amount",
    "usage_billed",
    "top_up_billed",
    "shortfall",
    "minimum_commitment",
    "billed_amount",
    "overage_billed",
    "annual_recurring_value",
    "credited",
    "total",
    "unbilled_usage_in_l3",
}
UNIT_PRICE_KEYS = {"rate", "contract_rate", "invoiced_unit", "overage_rate", "unit_amount"}
HOUR_KEYS = {"hours", "overage_hours", "hours_in_period", "included_hours", "overage_billed_hours"}
UNIT_QUANTITY_KEYS = {"quantity", "unbilled_quantity", "billed_quantity"}
COUNT_KEYS = {"events", "entries", "invoices_discounted", "hours_since_delivery"}
DAY_COUNT_KEYS = {"notice_period_days"}
ID_LIST_KEYS = {"time_entry_ids": "time entry", "usage_event_ids": "usage event", "milestone_ids": "milestone"}
# Read by another column's cell (the link of an invoice number, an alert's status) or internal.
HIDDEN_KEYS = {
    "invoice_id",
    "fixed_fee_invoice_id",
    "invoice_line",
    "discount_application",
    "alert_status",
    "billing_key",
    "milestone_ids",
}
LABELS = {
    "work_date": "Work date",
    "delivered_at": "Delivered",
    "hours_since_delivery": "Hours since delivery",
    "time_entry_ids": "Time entries",
    "usage_event_ids": "Usage events",
    "price_line": "Price line",
    "line_ref": "Line",
    "invoiced_unit": "Invoiced unit price",
    "contract_rate": "Contract rate",
    "renewal_alert": "Renewal alert",
    "fixed_fee_invoice": "Fixed fee invoice",
    "fixed_fee_billed_on": "Fixed fee billed on",
    "fixed_fee_amount": "Fixed fee",
    "invoices_discounted": "Invoices discounted",
    "no_expiry_reason": "Why no expiry",
    "rate_basis": "Rate from",
    "hours_in_period": "Hours in the period",
    "overage_billed": "Overage billed",
    "overage_billed_hours": "Overage hours billed",
    "discount_id": "Discount",
    "unbilled_usage_in_l3": "Unbilled usage (L3)",
}


@dataclass
class Cell:
    text: str
    url: str = ""
    title: str = ""
    numeric: bool = False


@dataclass
class Column:
    key: str
    label: str
    numeric: bool = False


@dataclass
class Evidence:
    columns: list[Column] = field(default_factory=list)
    rows: list[list[Cell]] = field(default_factory=list)
    facts: list[tuple[str, Cell]] = field(default_factory=list)


def _decimal(value) -> Decimal | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _number(value: Decimal) -> str:
    """37.5 (not 37.500000), 2,400,000 (not 2400000 or 2.4E+6)."""
    value = value.normalize()
    return f"{value:,f}" if value != value.to_integral() else f"{int(value):,}"


def _date(value) -> str | None:
    if isinstance(value, (date, datetime)):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value)) if "T" in str(value) else date.fromisoformat(str(value))
        except ValueError:
            return None
    if isinstance(moment, datetime):
        if timezone.is_aware(moment):
            moment = timezone.localtime(moment)
        return f"{moment:%-d %b %Y %H:%M}"
    return f"{moment:%-d %b %Y}"


def _label(key: str, currency: str) -> str:
    text = LABELS.get(key) or key.replace("_", " ").capitalize()
    if key in MONEY_KEYS or key in UNIT_PRICE_KEYS:
        text += f" ({currency})"
    return text


class _Links:
    """URLs of the objects a finding's evidence names (the finding's contract, invoices, …)."""

    def __init__(self, finding):
        self.finding = finding

    def contract(self, anchor: str = "") -> str:
        if not self.finding.contract_id:
            return ""
        return reverse("contracts:contract_detail", args=[self.finding.contract_id]) + anchor

    @staticmethod
    def invoice(invoice_id) -> str:
        return reverse("billing:invoice_detail", kwargs={"invoice_id": invoice_id}) if invoice_id else ""

    @staticmethod
    def discount(discount_id) -> str:
        return reverse("discounts:detail", kwargs={"kind": "discount", "pk": discount_id}) if discount_id else ""

    @staticmethod
    def renewal_alert(alert_id) -> str:
        return f"{reverse('renewals:queue')}?status=all#alert-{alert_id}" if alert_id else ""


def _cell(key: str, value, row: dict, *, currency: str, links: _Links, facts: dict) -> Cell:
    if value is None or value == "" or value == []:
        return Cell("—")
    if value is True or value is False:
        return Cell("yes" if value else "no")
    number = _decimal(value)
    if key in ID_LIST_KEYS and isinstance(value, list):
        noun = ID_LIST_KEYS[key]
        return Cell(f"{len(value)} {noun}{'s' if len(value) != 1 else ''}", title="ids " + ", ".join(map(str, value)))
    if key in DATE_KEYS and (text := _date(value)):
        return Cell(text)
    if key == "invoice" and isinstance(value, str):
        invoice_id = row.get("invoice_id") or facts.get("invoice_id") or links.finding.invoice_id
        # L8 compares the invoice's terms with the contract's: there "invoice" is a term, not a number.
        if "term" in row:
            return Cell(value)
        return Cell(value, url=links.invoice(invoice_id))
    if key == "fixed_fee_invoice":
        return Cell(str(value), url=links.invoice(row.get("fixed_fee_invoice_id") or facts.get("fixed_fee_invoice_id")))
    if key in ("discount", "discount_id") and isinstance(value, int):
        return Cell(f"D-{value}", url=links.discount(value))
    if key == "renewal_alert" and isinstance(value, int):
        status = (row.get("alert_status") or "").replace("_", " ")
        return Cell(
            f"Alert of {links.finding.contract.number if links.finding.contract_id else 'the contract'}"
            + (f" ({status})" if status else ""),
            url=links.renewal_alert(value),
        )
    if key == "milestone" and isinstance(value, int):
        return Cell(str(row.get("name") or f"Milestone {value}"), url=links.contract("#milestones"))
    if key == "price_line" and isinstance(value, int):
        ref = row.get("line_ref") or facts.get("line_ref")
        return Cell(f"line {ref}" if ref else "price line", url=links.contract("#version-terms"))
    if key == "value" and number is not None:
        kind = row.get("kind")
        text = f"{_number(number)} %" if kind == "percentage" else f"{format_money(number, currency)} {currency}"
        return Cell(text, numeric=True)
    if number is not None:
        if key in MONEY_KEYS:
            return Cell(format_money(number, currency), numeric=True)
        if key in UNIT_PRICE_KEYS:
            suffix = " /h" if key == "rate" and ("hours" in row or "role" in row) else ""
            return Cell(_unit_price(number, currency) + suffix, numeric=True)
        if key in HOUR_KEYS:
            return Cell(f"{_number(number)} h", numeric=True)
        if key in UNIT_QUANTITY_KEYS:
            metric = row.get("metric") or facts.get("metric") or ""
            return Cell(f"{_number(number)} {metric}".strip(), numeric=True)
        if key in COUNT_KEYS:
            return Cell(_number(number), numeric=True)
        if key in DAY_COUNT_KEYS:
            return Cell(f"{_number(number)} days", numeric=True)
    if isinstance(value, list):
        return Cell(", ".join(str(v) for v in value))
    if isinstance(value, dict):
        return Cell(", ".join(f"{k}: {v}" for k, v in value.items()))
    return Cell(str(value).replace("_", " ") if key in ("kind", "status", "timing", "scope", "source") else str(value))


def _unit_price(value: Decimal, currency: str) -> str:
    """Money per unit keeps the precision it was agreed at (0.0015 per call), at least the currency's."""
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    digits = max(minor_units(currency), -exponent if exponent < 0 else 0)
    return f"{normal:,.{digits}f}"


def finding_evidence(finding) -> Evidence:
    """The finding's evidence rows and facts, ready for the page."""
    evidence = finding.evidence or {}
    rows: list[dict] = list(evidence.get("rows") or [])
    facts: dict = dict(evidence.get("facts") or {})
    keys: list[str] = list(evidence.get("columns") or [])
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    keys = [k for k in keys if k not in HIDDEN_KEYS and not k.startswith("_")]
    currency = finding.currency
    links = _Links(finding)
    result = Evidence()
    for key in keys:
        cells = [_cell(key, row.get(key), row, currency=currency, links=links, facts=facts) for row in rows]
        result.columns.append(Column(key=key, label=_label(key, currency), numeric=any(c.numeric for c in cells)))
    for row in rows:
        result.rows.append([_cell(k, row.get(k), row, currency=currency, links=links, facts=facts) for k in keys])
    for key, value in facts.items():
        if key in HIDDEN_KEYS or key.startswith("_") or value in (None, "", []):
            continue
        result.facts.append(
            (_label(key, currency), _cell(key, value, facts, currency=currency, links=links, facts=facts))
        )
    return result
