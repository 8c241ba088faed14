"""Display helpers for contracts templates: money with enough digits, one-line price summaries."""

from __future__ import annotations

from decimal import Decimal

from django import template

from revexos.money import MINOR_UNITS

register = template.Library()

STATUS_BADGES = {
    "active": "ok",
    "draft": "warn",
    "terminated": "bad",
    "expired": "",
    "renewed": "",
    "pending": "",
    "delivered": "ok",
    "invoiced": "ok",
    "cancelled": "bad",
}


@register.filter
def money(value, currency: str = "") -> str:
    """Thousands separators and at least the currency's minor unit; unit prices keep finer digits."""
    if value is None or value == "":
        return "—"
    number = Decimal(str(value))
    digits = MINOR_UNITS.get(currency, 2)
    exponent = -number.normalize().as_tuple().exponent if number != 0 else 0
    places = max(digits, min(int(exponent), 6))
    text = f"{number:,.{places}f}"
    return f"{text} {currency}".strip() if currency else text


@register.filter
def qty(value) -> str:
    if value is None or value == "":
        return "—"
    number = Decimal(str(value)).normalize()
    return f"{number:,f}"


@register.filter
def badge(status: str) -> str:
    return STATUS_BADGES.get(status, "")


@register.inclusion_tag("contracts/_status_badge.html")
def contract_status(contract):
    """The status a person should read: an active contract that has not started yet is "Signed,
    starts 11 Jan", not "Active" (nothing is in force or billed before its start date)."""
    from revexos.dates import tenant_today

    today = tenant_today()
    if contract.status == "active" and contract.start_date and contract.start_date > today:
        fmt = "%-d %b" if contract.start_date.year == today.year else "%-d %b %Y"
        return {
            "label": f"Signed, starts {contract.start_date.strftime(fmt)}",
            "css": "warn",
            "title": "Signed; billing starts on the start date",
        }
    return {"label": contract.get_status_display(), "css": STATUS_BADGES.get(contract.status, ""), "title": ""}


@register.filter
def get(mapping, key):
    try:
        return mapping.get(key, "")
    except AttributeError:
        return ""


@register.simple_tag
def line_summary(line, currency: str) -> str:
    """What a price line charges, in one line a finance person reads at a glance."""
    kind = line.kind
    c = currency
    if kind == "fixed_fee":
        text = f"{money(line.amount, c)} once"
        return text + (f", billed {line.bill_on:%-d %b %Y}" if line.bill_on else "")
    if kind == "recurring":
        text = f"{money(line.amount, c)} {line.get_frequency_display().lower()}, in {line.get_timing_display().lower()[3:]}"
        if line.included_hours is not None:
            text += f" · {qty(line.included_hours)} h included, then {money(line.overage_rate, c)}/h"
        return text
    if kind == "milestone":
        amount = (
            money(line.amount, c) if line.amount is not None else f"{qty(line.percent_of_fixed_fee)} % of the fixed fee"
        )
        return amount + (f" on delivery of {line.reference}" if line.reference else " on delivery")
    if kind == "time_and_materials":
        rates = ", ".join(f"{r.role} {money(r.hourly_rate, c)}/h" for r in line.rates.all())
        return rates + (f" · cap {money(line.cap, c)}" if line.cap is not None else " · no cap")
    if kind == "usage":
        model = line.charge_model
        unit = line.metric
        if model == "per_unit":
            text = f"{money(line.unit_amount, c)} per {unit}"
        elif model in ("graduated", "volume", "graduated_percentage"):
            tiers = list(line.tiers.all())
            parts, lower = [], None
            for t in tiers:
                price = f"{qty(t.rate)} %" if model == "graduated_percentage" else money(t.unit_amount, c)
                if t.up_to is not None:
                    parts.append(f"up to {qty(t.up_to)} at {price}")
                else:
                    parts.append(f"above {qty(lower)} at {price}" if lower is not None else f"{price} each")
                lower = t.up_to
            how = {
                "graduated": "graduated",
                "volume": "volume (all units at the tier reached)",
                "graduated_percentage": "graduated % of amount",
            }[model]
            text = f"{unit}, {how}: " + "; ".join(parts)
        elif model == "package":
            text = f"{money(line.amount, c)} per {qty(line.package_size)} {unit}"
        elif model == "percentage":
            text = f"{qty(line.rate)} % of {unit}"
            if line.fixed_amount:
                text += f" + {money(line.fixed_amount, c)} per transaction"
            if line.per_transaction_min is not None or line.per_transaction_max is not None:
                text += f" (min {money(line.per_transaction_min, c)}, max {money(line.per_transaction_max, c)})"
        else:
            text = model
        text += f" · billed {line.get_frequency_display().lower()}"
        if line.free_units:
            text += f" · {qty(line.free_units)} free"
        if line.minimum_commitment:
            text += f" · minimum {money(line.minimum_commitment, c)}"
        return text
    return ""


# Names of service fields a form has no field for, as a person calls them (errors listed above a form).
ERROR_LABELS = {
    "issuing_entity": "Issuing entity",
    "effective_from": "Takes effect",
    "renewal_window_days": "Renewal window",
    "renewal_lead_days": "Alert lead time",
    "auto_issue": "Automatic issuing",
    "external_id": "External id",
    "billing_emails": "Billing e-mails",
    "po_number": "PO number",
    "payment_terms_days": "Payment terms",
}
NO_LABEL = {"non_field_errors", "price_lines", "__all__", ""}


@register.filter
def error_label(name: str) -> str:
    """``issuing_entity`` → "Issuing entity", ``address.country`` → "Address country"; "" for errors
    about the whole form. Never shows a person an internal field name."""
    if name in NO_LABEL:
        return ""
    if name in ERROR_LABELS:
        return ERROR_LABELS[name]
    return name.replace(".", " ").replace("_", " ").strip().capitalize()


@register.filter
def email_wrap(address: str):
    """An e-mail address that wraps only where a person would break it: before the @ and the dots
    of the domain, never inside a word (accounts.payable@bluepeak.exa / mple)."""
    from django.utils.html import escape
    from django.utils.safestring import mark_safe

    local, at, domain = str(address or "").partition("@")
    if not at:
        return escape(address)
    return mark_safe(f"{escape(local)}<wbr>@{'<wbr>.'.join(escape(part) for part in domain.split('.'))}")
