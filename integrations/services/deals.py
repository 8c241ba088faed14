"""CRMs → draft contracts (HubSpot, Salesforce).

A won deal is fetched from the CRM, turned into plain *terms* (customer, dates, lines; pure
functions below), and applied once per ``(connection, deal)`` (``CrmDeal``):

- new deal → the customer is found by its CRM id (``Customer.crm_id`` = ``hubspot:<company id>``)
  or created, and a **draft** contract is created with the deal's lines: line items with a
  recurring billing frequency → recurring lines, the rest → fixed fees. Finance activates it.
- the same deal again, unchanged → nothing; changed while the contract is a draft → the draft
  follows the deal; changed after the contract was activated → a review task showing the
  difference, never a silent change to a signed contract.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction

from billing.models import ReviewTaskKind
from billing.services.reviews import review_task_raise
from contracts.wire import CURRENCY_CODES
from integrations.models import Connection, CrmDeal, InboxEvent, InboxStatus
from integrations.services.connections import setting
from integrations.services.inbox import Outcome
from integrations.sources import hubspot as hubspot_source
from integrations.sources import salesforce as salesforce_source
from revexos.money import quantize
from revexos.parsing import date_in_bounds, parse_date, parse_id

DEFAULT_TERM_MONTHS = 12
HUBSPOT_FREQUENCIES = {"monthly": "monthly", "quarterly": "quarterly", "annually": "annual", "annual": "annual"}
NUMBER_PREFIX = {"hubspot": "HS", "salesforce": "SF"}


class DealProblem(Exception):
    """The deal cannot become a contract as it stands (a person must fix it in the CRM)."""


# --------------------------------------------------------------------------- pure mapping


def _decimal(value: Any, default: str = "0") -> Decimal:
    try:
        number = Decimal(str(value).strip()) if value not in (None, "") else Decimal(default)
    except InvalidOperation:
        raise DealProblem(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise DealProblem(f"{value!r} is not a number")
    return number


def _day(value: Any) -> date | None:
    """HubSpot dates come as ISO date-times (``2026-03-01T00:00:00Z``), dates, or epoch milliseconds."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        if parse_id(text) is not None:
            day = datetime.fromtimestamp(int(text) / 1000, tz=None).date()  # noqa: DTZ006 - a calendar date
            return date_in_bounds(day)
        return parse_date(text[:10])
    except (ValueError, OverflowError, OSError):
        return None


def _add_months(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    month += 1
    import calendar

    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def _line(*, name: str, quantity: Decimal, price: Decimal, frequency: str, currency: str, start: date) -> dict:
    amount = quantize(quantity * price, currency)
    if amount < 0:
        raise DealProblem(f"line item “{name}” has a negative amount")
    description = name if quantity == 1 else f"{name} × {quantity.normalize():f}"
    if frequency:
        return {
            "kind": "recurring",
            "description": description[:200],
            "amount": str(amount),
            "frequency": frequency,
            "timing": "advance",
        }
    return {"kind": "fixed_fee", "description": description[:200], "amount": str(amount), "bill_on": start.isoformat()}


def hubspot_terms(deal: dict, *, start_property: str, end_property: str, term_property: str) -> dict:
    """HubSpot deal + line items + company (``clients.hubspot_deal_fetch``) → terms."""
    props = deal.get("properties") or {}
    currency = str(props.get("deal_currency_code") or "USD").upper()
    if currency not in CURRENCY_CODES:
        raise DealProblem(f"currency {currency} is not supported")
    start = _day(props.get(start_property)) or _day(props.get("closedate"))
    if start is None:
        raise DealProblem("it has no close date or start date")
    items = deal.get("line_items") or []
    term = props.get(term_property) or next(
        (li.get("hs_term_in_months") for li in items if li.get("hs_term_in_months")), None
    )
    term_months = int(_decimal(term, str(DEFAULT_TERM_MONTHS)))
    end = _day(props.get(end_property)) or (_add_months(start, max(term_months, 1)) - timedelta(days=1))
    lines = []
    for item in items:
        raw = str(item.get("recurringbillingfrequency") or "").strip().lower()
        frequency = HUBSPOT_FREQUENCIES.get(raw, "")
        if raw and not frequency:
            raise DealProblem(
                f"line item “{item.get('name')}” is billed {raw.replace('_', ' ')}; contracts bill monthly, quarterly or annually"
            )
        lines.append(
            _line(
                name=str(item.get("name") or "Line item"),
                quantity=_decimal(item.get("quantity"), "1"),
                price=_decimal(item.get("price")),
                frequency=frequency,
                currency=currency,
                start=start,
            )
        )
    if not lines:
        raise DealProblem("it has no line items")
    company = deal.get("company") or None
    if not company or not company.get("id"):
        raise DealProblem("it has no associated company")
    return {
        "deal_id": str(deal.get("id")),
        "name": str(props.get("dealname") or f"Deal {deal.get('id')}")[:200],
        "currency": currency,
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "customer": {
            "crm_id": f"hubspot:{company['id']}",
            "external_id": f"hubspot-{company['id']}",
            "legal_name": str(company.get("name") or f"HubSpot company {company['id']}")[:200],
            "country": str(company.get("country") or "")[:2].upper()
            if len(str(company.get("country") or "")) == 2
            else "",
            "city": str(company.get("city") or "")[:100],
            "postal_code": str(company.get("zip") or "")[:20],
            "line1": str(company.get("address") or "")[:200],
        },
        "lines": lines,
    }


def salesforce_terms(found: dict, *, recurring_field: str) -> dict:
    """Salesforce opportunity + line items + account (``clients.salesforce_opportunity_fetch``) → terms."""
    opp = found.get("opportunity") or {}
    account = found.get("account") or None
    currency = str(opp.get("CurrencyIsoCode") or "USD").upper()
    if currency not in CURRENCY_CODES:
        raise DealProblem(f"currency {currency} is not supported")
    start = _day(opp.get("ContractStartDate__c")) or _day(opp.get("CloseDate"))
    if start is None:
        raise DealProblem("it has no close date")
    term_months = int(_decimal(opp.get("Contract_Term_Months__c"), str(DEFAULT_TERM_MONTHS)))
    end = _add_months(start, max(term_months, 1)) - timedelta(days=1)
    lines = []
    for item in found.get("line_items") or []:
        raw = str(item.get(recurring_field) or "").strip().lower()
        frequency = HUBSPOT_FREQUENCIES.get(raw, "")
        if raw and not frequency:
            raise DealProblem(
                f"line item “{item.get('Name')}” is billed {raw}; contracts bill monthly, quarterly or annually"
            )
        product = item.get("Product2") or {}
        lines.append(
            _line(
                name=str(product.get("Name") or item.get("Name") or "Line item"),
                quantity=_decimal(item.get("Quantity"), "1"),
                price=_decimal(item.get("UnitPrice")),
                frequency=frequency,
                currency=currency,
                start=start,
            )
        )
    if not lines:
        raise DealProblem("it has no products (opportunity line items)")
    if not account or not account.get("Id"):
        raise DealProblem("it has no account")
    country = str(account.get("BillingCountryCode") or account.get("BillingCountry") or "")
    return {
        "deal_id": str(opp.get("Id")),
        "name": str(opp.get("Name") or f"Opportunity {opp.get('Id')}")[:200],
        "currency": currency,
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "customer": {
            "crm_id": f"salesforce:{account['Id']}",
            "external_id": f"salesforce-{account['Id']}",
            "legal_name": str(account.get("Name") or f"Salesforce account {account['Id']}")[:200],
            "country": country.upper() if len(country) == 2 else "",
            "city": str(account.get("BillingCity") or "")[:100],
            "postal_code": str(account.get("BillingPostalCode") or "")[:20],
            "line1": str(account.get("BillingStreet") or "")[:200],
        },
        "lines": lines,
    }


def terms_difference(before: dict, after: dict) -> list[str]:
    """What changed between two term sets, in words (for the review task)."""
    out = []
    for key, label in (("name", "Name"), ("currency", "Currency"), ("start_date", "Start"), ("end_date", "End")):
        if before.get(key) != after.get(key):
            out.append(f"{label}: {before.get(key)} → {after.get(key)}")

    def describe(line: dict) -> str:
        every = f" {line['frequency']}" if line.get("frequency") else " once"
        return f"{line['description']}: {line['amount']}{every}"

    old = [describe(line) for line in before.get("lines", [])]
    new = [describe(line) for line in after.get("lines", [])]
    out += [f"Removed line: {line}" for line in old if line not in new]
    out += [f"Added line: {line}" for line in new if line not in old]
    return out


# --------------------------------------------------------------------------- applying terms


def _customer_for(terms: dict, *, label: str):
    from contracts.models import Customer
    from contracts.services.customers import customer_create

    info = terms["customer"]
    customer = Customer.objects.filter(crm_id=info["crm_id"]).first()
    if customer is not None:
        return customer
    address = {k: info[k] for k in ("line1", "city", "postal_code", "country") if info.get(k)}
    external_id = info["external_id"]
    if Customer.objects.filter(external_id=external_id).exists():
        external_id = f"{external_id}-{hashlib.sha256(info['crm_id'].encode()).hexdigest()[:6]}"
    return customer_create(
        data={
            "external_id": external_id,
            "legal_name": info["legal_name"],
            "currency": terms["currency"],
            "crm_id": info["crm_id"],
            **({"address": address} if address else {}),
        },
        note=f"From {label}",
    )


def _contract_number(source: str, deal_id: str) -> str:
    from contracts.models import Contract

    number = f"{NUMBER_PREFIX.get(source, 'CRM')}-{deal_id}"[:50]
    if Contract.objects.filter(number=number).exists():
        number = f"{number[:43]}-{hashlib.sha256(number.encode()).hexdigest()[:6]}"
    return number


def _contract_data(terms: dict, connection: Connection | None = None) -> dict:
    entity = setting(connection, "issuing_entity") if connection is not None else ""
    return {
        **({"issuing_entity": entity} if entity else {}),
        "title": terms["name"],
        "start_date": terms["start_date"],
        "end_date": terms["end_date"],
        "currency": terms["currency"],
        "price_lines": terms["lines"],
    }


def deal_apply(*, connection: Connection, terms: dict, label: str) -> Outcome:
    """Create the draft for a won deal once; follow changes on a draft; review changes on a signed one."""
    from contracts.services.contracts import contract_create, contract_update

    deal_id = terms["deal_id"]
    existing = (
        CrmDeal.objects.select_for_update()
        .select_related("contract")
        .filter(connection=connection, deal_id=deal_id)
        .first()
    )
    if existing is None:
        try:
            with transaction.atomic():
                customer = _customer_for(terms, label=label)
                contract = contract_create(
                    data={
                        "number": _contract_number(connection.source, deal_id),
                        "customer": customer.external_id,
                        "status": "draft",
                        **_contract_data(terms, connection),
                    },
                    note=f"From {label}",
                )
                CrmDeal.objects.create(
                    connection=connection, deal_id=deal_id, name=terms["name"], contract=contract, terms=terms
                )
        except IntegrityError:
            # The same deal won twice at the same moment: the other delivery made the draft.
            existing = CrmDeal.objects.select_related("contract").get(connection=connection, deal_id=deal_id)
            return Outcome(
                InboxStatus.PROCESSED, f"{label} already has contract {existing.contract.number}.", existing.contract_id
            )
        return Outcome(
            InboxStatus.PROCESSED,
            f"{label} won → draft contract {contract.number} for {customer.legal_name} with "
            f"{len(terms['lines'])} line{'s' if len(terms['lines']) != 1 else ''}; activate it to start billing.",
            contract.pk,
        )
    contract = existing.contract
    changes = terms_difference(existing.terms, terms)
    if not changes:
        return Outcome(
            InboxStatus.PROCESSED,
            f"{label} is unchanged; contract {contract.number} already made from it.",
            contract.pk,
        )
    if contract.status == "draft":
        contract_update(contract=contract, data=_contract_data(terms))
        existing.terms = terms
        existing.name = terms["name"]
        existing.save(update_fields=["terms", "name", "updated_at"])
        return Outcome(
            InboxStatus.PROCESSED,
            f"{label} changed → draft {contract.number} updated: {'; '.join(changes)}.",
            contract.pk,
        )
    digest = hashlib.sha256(json.dumps(terms, sort_keys=True).encode()).hexdigest()[:16]
    review_task_raise(
        kind=ReviewTaskKind.SCOPE_CHANGE,
        dedupe_key=f"crm-deal-changed:{existing.pk}:{digest}",
        title=f"{label} changed after contract {contract.number} was signed",
        detail="The CRM now says:\n"
        + "\n".join(f"• {c}" for c in changes)
        + "\n\nThe signed contract was not changed. Amend it if the customer agreed to the new terms.",
        contract_id=contract.pk,
    )
    return Outcome(
        InboxStatus.PROCESSED,
        f"{label} changed after {contract.number} was signed: {'; '.join(changes)}. A review task was raised; the contract is unchanged.",
        contract.pk,
    )


def _problem(event: InboxEvent, label: str, problem: str) -> Outcome:
    text = f"{label} was won but cannot become a contract: {problem}"
    review_task_raise(
        kind=ReviewTaskKind.BILLING_ERROR,
        dedupe_key=f"integrations:deal-problem:{event.connection_id}:{label}:{problem}"[:200],
        title=text[:300],
        detail="Fix the deal in the CRM, or the connection's settings (e.g. its issuing entity), then replay the event from the connection's inbox.",
    )
    return Outcome(InboxStatus.UNMATCHED, text + ". A review task was raised.")


def hubspot_handle(event: InboxEvent) -> Outcome:
    from integrations.clients import hubspot_deal_fetch

    payload = json.loads(bytes(event.body))
    connection = event.connection
    won = hubspot_source.won_deal_ids(payload, won_stages={setting(connection, "won_stage")})
    if not won:
        return Outcome(InboxStatus.IGNORED, "No deal moved to the won stage.")
    pipeline = setting(connection, "pipeline")
    outcomes = []
    for deal_id in won:
        label = f"HubSpot deal {deal_id}"
        deal = hubspot_deal_fetch(connection, deal_id)
        deal_pipeline = str((deal.get("properties") or {}).get("pipeline") or "")
        if pipeline and pipeline != "*" and deal_pipeline and deal_pipeline != pipeline:
            outcomes.append(Outcome(InboxStatus.IGNORED, f"{label} is in pipeline {deal_pipeline}, not {pipeline}."))
            continue
        try:
            terms = hubspot_terms(
                deal,
                start_property=setting(connection, "start_date_property"),
                end_property=setting(connection, "end_date_property"),
                term_property=setting(connection, "term_property"),
            )
        except DealProblem as exc:
            outcomes.append(_problem(event, label, str(exc)))
            continue
        outcomes.append(_apply(event, terms, label))
    return _merge(outcomes)


def _apply(event: InboxEvent, terms: dict, label: str) -> Outcome:
    """The contract services refuse what a person must settle (e.g. which issuing entity): a review
    task names it, and the event can be replayed once the connection's settings say."""
    from django.core.exceptions import ValidationError

    try:
        with transaction.atomic():
            return deal_apply(connection=event.connection, terms=terms, label=label)
    except ValidationError as exc:
        return _problem(event, label, " ".join(exc.messages))


def salesforce_handle(event: InboxEvent) -> Outcome:
    from integrations.clients import salesforce_opportunity_fetch

    message = salesforce_source.parse(bytes(event.body))
    won = salesforce_source.won_opportunities(message)
    if not won:
        return Outcome(InboxStatus.IGNORED, "No won opportunity in the message.")
    outcomes = []
    for fields in won:
        label = f"Salesforce opportunity {fields['Id']}"
        found = salesforce_opportunity_fetch(event.connection, fields["Id"])
        try:
            terms = salesforce_terms(found, recurring_field=setting(event.connection, "recurring_field"))
        except DealProblem as exc:
            outcomes.append(_problem(event, label, str(exc)))
            continue
        outcomes.append(_apply(event, terms, label))
    return _merge(outcomes)


def _merge(outcomes: list[Outcome]) -> Outcome:
    rank = {InboxStatus.UNMATCHED: 0, InboxStatus.PROCESSED: 1, InboxStatus.IGNORED: 2}
    status = min((o.status for o in outcomes), key=lambda s: rank.get(s, 3))
    return Outcome(
        status, " ".join(o.text for o in outcomes), next((o.contract_id for o in outcomes if o.contract_id), None)
    )
