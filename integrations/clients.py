"""Calls to the sources' APIs, each with a configurable base URL (the connection's ``api_base``).

HubSpot through the official ``hubspot-api-client``, Salesforce through ``simple-salesforce``,
Asana and Harvest over plain HTTP (``requests``): each answers plain dicts, so the services and their
tests never see a vendor's object model. Every call has a timeout; errors raise ``SourceApiError``
with a message that names the source and what failed.
"""

from __future__ import annotations

from typing import Any

import requests

from integrations.models import Connection
from integrations.services.connections import setting

TIMEOUT = 15
HARVEST_MAX_PAGES = 50
USER_AGENT = "RevExOS integrations (billing@revexos.localhost)"


class SourceApiError(Exception):
    pass


# --------------------------------------------------------------------------- HubSpot

DEAL_PROPERTIES = [
    "dealname",
    "amount",
    "closedate",
    "dealstage",
    "pipeline",
    "deal_currency_code",
    "hs_object_id",
]
LINE_ITEM_PROPERTIES = [
    "name",
    "quantity",
    "price",
    "amount",
    "recurringbillingfrequency",
    "hs_recurring_billing_period",
    "hs_term_in_months",
    "hs_sku",
]
COMPANY_PROPERTIES = ["name", "domain", "address", "city", "state", "zip", "country"]


def _hubspot(connection: Connection):
    from hubspot import HubSpot

    return HubSpot(access_token=connection.api_token, host=setting(connection, "api_base"))


def _association_ids(associations: Any, *names: str) -> list[str]:
    if not associations:
        return []
    for name in names:
        found = associations.get(name) if isinstance(associations, dict) else None
        if found is not None:
            results = getattr(found, "results", None)
            if results is None and isinstance(found, dict):
                results = found.get("results", [])
            return [str(getattr(r, "id", None) or r.get("id")) for r in results or []]
    return []


def hubspot_deal_fetch(connection: Connection, deal_id: str) -> dict[str, Any]:
    """The deal's properties, its line items' properties and its primary company's properties."""
    from hubspot.crm.line_items import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

    client = _hubspot(connection)
    extra = [setting(connection, k) for k in ("start_date_property", "end_date_property", "term_property")]
    try:
        deal = client.crm.deals.basic_api.get_by_id(
            deal_id,
            properties=DEAL_PROPERTIES + [p for p in extra if p],
            associations=["line_items", "companies"],
            _request_timeout=TIMEOUT,
        )
        line_ids = _association_ids(deal.associations, "line items", "line_items")
        lines = []
        if line_ids:
            batch = client.crm.line_items.batch_api.read(
                BatchReadInputSimplePublicObjectId(
                    properties=LINE_ITEM_PROPERTIES,
                    inputs=[SimplePublicObjectId(id=i) for i in line_ids],
                    properties_with_history=[],
                ),
                _request_timeout=TIMEOUT,
            )
            by_id = {str(r.id): r.properties for r in batch.results}
            lines = [{"id": i, **by_id[i]} for i in line_ids if i in by_id]
        company_ids = _association_ids(deal.associations, "companies")
        company = None
        if company_ids:
            found = client.crm.companies.basic_api.get_by_id(
                company_ids[0], properties=COMPANY_PROPERTIES, _request_timeout=TIMEOUT
            )
            company = {"id": str(found.id), **(found.properties or {})}
    except Exception as exc:  # ApiException, connection errors: one message for the inbox
        status = getattr(exc, "status", None)
        raise SourceApiError(
            f"HubSpot answered {status} for deal {deal_id}" if status else f"HubSpot could not be reached: {exc}"
        ) from exc
    return {"id": str(deal.id), "properties": deal.properties or {}, "line_items": lines, "company": company}


# --------------------------------------------------------------------------- Salesforce


def _salesforce(connection: Connection):
    from simple_salesforce import Salesforce

    base = setting(connection, "api_base")
    version = setting(connection, "api_version")
    sf = Salesforce(instance_url=base, session_id=connection.api_token, version=version)
    # simple-salesforce builds https://<host>/…; keep the configured scheme and host as given.
    sf.base_url = f"{base}/services/data/v{version}/"
    return sf


def salesforce_opportunity_fetch(connection: Connection, opportunity_id: str) -> dict[str, Any]:
    """The opportunity, its line items (with the product name) and its account."""
    if not opportunity_id.isalnum() or len(opportunity_id) not in (15, 18):
        raise SourceApiError(f"{opportunity_id!r} is not a Salesforce record id.")
    freq = setting(connection, "recurring_field")
    freq_select = f", {freq}" if freq.replace("_", "").isalnum() else ""
    sf = _salesforce(connection)
    try:
        opportunity = sf.restful(f"sobjects/Opportunity/{opportunity_id}", timeout=TIMEOUT)
        lines = sf.query(
            "SELECT Id, Name, Quantity, UnitPrice, TotalPrice, Description, ServiceDate, Product2.Name"
            f"{freq_select} FROM OpportunityLineItem WHERE OpportunityId = '{opportunity_id}'",
            timeout=TIMEOUT,
        )["records"]
        account = None
        if opportunity.get("AccountId"):
            account = sf.restful(f"sobjects/Account/{opportunity['AccountId']}", timeout=TIMEOUT)
    except Exception as exc:
        status = getattr(exc, "status", None)
        raise SourceApiError(
            f"Salesforce answered {status} for opportunity {opportunity_id}"
            if status
            else f"Salesforce could not be reached: {exc}"
        ) from exc
    return {"opportunity": opportunity, "line_items": lines, "account": account}


# --------------------------------------------------------------------------- Asana


def asana_task_fetch(connection: Connection, gid: str) -> dict[str, Any]:
    url = f"{setting(connection, 'api_base')}/tasks/{gid}"
    try:
        response = requests.get(
            url,
            params={"opt_fields": "name,completed,completed_at,projects.gid,projects.name,permalink_url"},
            headers={"Authorization": f"Bearer {connection.api_token}", "User-Agent": USER_AGENT},
            timeout=TIMEOUT,
        )
    except requests.RequestException as exc:
        raise SourceApiError(f"Asana could not be reached: {exc}") from exc
    if response.status_code != 200:
        raise SourceApiError(f"Asana answered {response.status_code} for task {gid}")
    try:
        return response.json()["data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceApiError(f"Asana's answer for task {gid} has no data") from exc


# --------------------------------------------------------------------------- Harvest


def harvest_time_entries_fetch(connection: Connection, *, updated_since: str | None) -> list[dict[str, Any]]:
    """Every time entry updated since the last pull, following Harvest's pagination."""
    url = f"{setting(connection, 'api_base')}/v2/time_entries"
    headers = {
        "Authorization": f"Bearer {connection.api_token}",
        "Harvest-Account-Id": str(connection.settings.get("account_id", "")),
        "User-Agent": USER_AGENT,
    }
    params: dict[str, Any] = {"per_page": 2000}
    if updated_since:
        params["updated_since"] = updated_since
    entries: list[dict[str, Any]] = []
    for _ in range(HARVEST_MAX_PAGES):
        try:
            response = requests.get(url, params=params, headers=headers, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise SourceApiError(f"Harvest could not be reached: {exc}") from exc
        if response.status_code != 200:
            raise SourceApiError(f"Harvest answered {response.status_code} for time entries")
        body = response.json()
        entries.extend(body.get("time_entries") or [])
        next_page = body.get("next_page")
        if not next_page:
            return entries
        params["page"] = next_page
    raise SourceApiError(f"Harvest has more than {HARVEST_MAX_PAGES} pages of new time entries; pull again.")
