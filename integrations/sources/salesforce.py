"""Salesforce Outbound Messages: a SOAP ``notifications`` envelope with ``OrganizationId`` and one or
more ``Notification`` (``Id``, ``sObject`` with the fields chosen in the outbound message), answered
with the ``Ack`` envelope. Parsed with defusedxml (no entity expansion, no external entities)."""

from __future__ import annotations

from dataclasses import dataclass, field

from defusedxml import ElementTree

OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOBJECT_NS = "urn:sobject.enterprise.soap.sforce.com"

ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    "<soapenv:Body>"
    f'<notificationsResponse xmlns="{OUTBOUND_NS}"><Ack>{{ack}}</Ack></notificationsResponse>'
    "</soapenv:Body></soapenv:Envelope>"
)


class NotAnOutboundMessage(ValueError):
    pass


@dataclass
class OutboundMessage:
    organization_id: str
    notifications: list[dict] = field(default_factory=list)  # {"id", "type", "fields": {...}}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse(body: bytes) -> OutboundMessage:
    try:
        root = ElementTree.fromstring(body)
    except Exception as exc:  # defusedxml raises its own errors for entities, ParseError for bad XML
        raise NotAnOutboundMessage(f"The body is not valid XML ({exc.__class__.__name__}).") from None
    notifications = next((el for el in root.iter() if _local(el.tag) == "notifications"), None)
    if notifications is None:
        raise NotAnOutboundMessage("No <notifications> element: this is not a Salesforce outbound message.")
    message = OutboundMessage(organization_id="")
    for child in notifications:
        name = _local(child.tag)
        if name == "OrganizationId":
            message.organization_id = (child.text or "").strip()
        elif name == "Notification":
            note = {"id": "", "type": "", "fields": {}}
            for part in child:
                if _local(part.tag) == "Id":
                    note["id"] = (part.text or "").strip()
                elif _local(part.tag) == "sObject":
                    kind = next((v for k, v in part.attrib.items() if _local(k) == "type"), "")
                    note["type"] = kind.split(":")[-1]
                    note["fields"] = {_local(f.tag): (f.text or "").strip() for f in part}
            message.notifications.append(note)
    return message


def organization_matches(configured: str, given: str) -> bool:
    """Org ids come as 15 or 18 characters; the first 15 identify the org."""
    return bool(configured) and bool(given) and configured.strip()[:15] == given.strip()[:15]


def describe_message(message: OutboundMessage) -> tuple[str, str, str]:
    ids = sorted(n["id"] for n in message.notifications if n["id"])
    kinds = sorted({n["type"] for n in message.notifications if n["type"]})
    objects = sorted({n["fields"].get("Id", "") for n in message.notifications})
    return ",".join(ids)[:200], ",".join(kinds)[:100], ",".join(objects)[:200]


def won_opportunities(message: OutboundMessage) -> list[dict]:
    return [
        n["fields"]
        for n in message.notifications
        if n["type"] == "Opportunity" and n["fields"].get("IsWon", "").lower() == "true" and n["fields"].get("Id")
    ]
