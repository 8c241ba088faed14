"""Small local HTTP stand-ins for the sources' APIs (127.0.0.1, a free port), answering the few
endpoints RevExOS calls with bodies shaped like each vendor's documented examples.

- HubSpot CRM v3 — "Deals: retrieve a deal" (``GET /crm/v3/objects/deals/{id}`` with
  ``associations``; the line-item association is keyed "line items"), "Line items: batch read"
  (``POST /crm/v3/objects/line_items/batch/read``) and "Companies: retrieve"; see
  developers.hubspot.com/docs/api/crm/deals, …/line-items, …/companies.
- Salesforce REST — ``GET /services/data/vXX.X/sobjects/Opportunity/{id}``, ``…/sobjects/Account/{id}``
  and ``GET …/query/?q=SOQL`` (``{"totalSize", "done", "records": [{"attributes": …}]}``) as in the REST
  API Developer Guide's examples.
- Asana — ``GET /tasks/{gid}`` answering ``{"data": {gid, resource_type, name, completed, …}}``
  (developers.asana.com, "Get a task").
- Harvest v2 — ``GET /v2/time_entries`` answering ``{"time_entries": [...], "per_page", "total_pages",
  "next_page", "page", "links"}`` (help.getharvest.com/api-v2, "List all time entries").
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class StandIn:
    """Routes: (method, path regex) → handler(match, query, body, headers) → (status, json body)."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern, Callable]] = []
        self.requests: list[tuple[str, str, dict]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stand_in.requests.append((self.command, url.path, dict(self.headers)))
                for method, pattern, handler in stand_in.routes:
                    match = pattern.fullmatch(url.path)
                    if method == self.command and match:
                        status, payload = handler(match, parse_qs(url.query), body, self.headers)
                        break
                else:
                    status, payload = 404, {"message": f"no route {self.command} {url.path}"}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def route(self, method: str, path: str, handler: Callable) -> StandIn:
        self.routes.append((method, re.compile(path), handler))
        return self

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- HubSpot

STAMP = "2026-05-20T10:15:00.000Z"


def hubspot_stand_in(*, deals: dict[str, dict], line_items: dict[str, dict], companies: dict[str, dict]) -> StandIn:
    """``deals[id] = {"properties": {...}, "line_items": [ids], "company": id}``."""

    def deal(match, query, body, headers):
        found = deals.get(match["id"])
        if found is None:
            return 404, {"status": "error", "message": "Object not found.", "category": "OBJECT_NOT_FOUND"}
        associations = {}
        if found.get("line_items"):
            associations["line items"] = {
                "results": [{"id": i, "type": "deal_to_line_item"} for i in found["line_items"]]
            }
        if found.get("company"):
            associations["companies"] = {"results": [{"id": found["company"], "type": "deal_to_company"}]}
        return 200, {
            "id": match["id"],
            "properties": {"hs_object_id": match["id"], **found["properties"]},
            "createdAt": STAMP,
            "updatedAt": STAMP,
            "archived": False,
            "associations": associations,
        }

    def batch(match, query, body, headers):
        wanted = [i["id"] for i in json.loads(body)["inputs"]]
        return 200, {
            "status": "COMPLETE",
            "results": [
                {"id": i, "properties": line_items[i], "createdAt": STAMP, "updatedAt": STAMP, "archived": False}
                for i in wanted
                if i in line_items
            ],
            "startedAt": STAMP,
            "completedAt": STAMP,
        }

    def company(match, query, body, headers):
        found = companies.get(match["id"])
        if found is None:
            return 404, {"status": "error", "message": "Object not found."}
        return 200, {"id": match["id"], "properties": found, "createdAt": STAMP, "updatedAt": STAMP, "archived": False}

    return (
        StandIn()
        .route("GET", r"/crm/v3/objects/deals/(?P<id>\d+)", deal)
        .route("POST", r"/crm/v3/objects/line_items/batch/read", batch)
        .route("GET", r"/crm/v3/objects/companies/(?P<id>\d+)", company)
    )


# --------------------------------------------------------------------------- Salesforce


def salesforce_stand_in(
    *, opportunities: dict[str, dict], line_items: dict[str, list[dict]], accounts: dict[str, dict]
):
    def sobject(kind, store):
        def handler(match, query, body, headers):
            found = store.get(match["id"])
            if found is None:
                return 404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
            return 200, {
                "attributes": {"type": kind, "url": f"/services/data/v59.0/sobjects/{kind}/{match['id']}"},
                "Id": match["id"],
                **found,
            }

        return handler

    def query(match, query, body, headers):
        soql = query.get("q", [""])[0]
        opp = re.search(r"OpportunityId = '(\w+)'", soql)
        records = [
            {
                "attributes": {
                    "type": "OpportunityLineItem",
                    "url": f"/services/data/v59.0/sobjects/OpportunityLineItem/{r['Id']}",
                },
                **r,
            }
            for r in line_items.get(opp.group(1) if opp else "", [])
        ]
        return 200, {"totalSize": len(records), "done": True, "records": records}

    return (
        StandIn()
        .route("GET", r"/services/data/v[\d.]+/sobjects/Opportunity/(?P<id>\w+)", sobject("Opportunity", opportunities))
        .route("GET", r"/services/data/v[\d.]+/sobjects/Account/(?P<id>\w+)", sobject("Account", accounts))
        .route("GET", r"/services/data/v[\d.]+/query/?", query)
    )


# --------------------------------------------------------------------------- Asana and Harvest


def asana_stand_in(*, tasks: dict[str, dict]) -> StandIn:
    def task(match, query, body, headers):
        found = tasks.get(match["gid"])
        if found is None:
            return 404, {"errors": [{"message": "task: Unknown object", "help": "…"}]}
        return 200, {"data": {"gid": match["gid"], "resource_type": "task", **found}}

    return StandIn().route("GET", r"/tasks/(?P<gid>\d+)", task)


def harvest_stand_in(*, pages: list[list[dict]]) -> StandIn:
    def entries(match, query, body, headers):
        page = int(query.get("page", ["1"])[0])
        items = pages[page - 1] if page <= len(pages) else []
        return 200, {
            "time_entries": items,
            "per_page": 2000,
            "total_pages": len(pages),
            "total_entries": sum(len(p) for p in pages),
            "next_page": page + 1 if page < len(pages) else None,
            "previous_page": page - 1 if page > 1 else None,
            "page": page,
            "links": {"first": "…", "next": None, "previous": None, "last": "…"},
        }

    return StandIn().route("GET", r"/v2/time_entries", entries)
