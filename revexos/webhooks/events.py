"""The event types RevExOS announces to outbound webhook endpoints, and what each one means.

Add a type here before publishing it; the API and the endpoint form offer exactly these.
Each event's ``data`` holds the object it is about (ids, numbers, amounts as strings, dates ISO);
receivers fetch the rest from the API.
"""

from __future__ import annotations

EVENT_TYPES: dict[str, str] = {
    "invoice.issued": "An invoice was issued (numbered); its PDF is final.",
    "invoice.sent": "An invoice was e-mailed to the customer's billing contacts.",
    "invoice.paid": "An invoice was paid in full.",
    "invoice.overdue": "An invoice passed its due date unpaid (once per invoice).",
    "credit_note.issued": "A credit note was issued against an invoice.",
    "contract.activated": "A contract became active (signed, or a draft activated).",
    "contract.amended": "A contract got new terms from a date (a new version).",
    "renewal_alert.raised": "A contract entered its renewal window.",
    "discount.expired": "A discount reached its end date or used its last billing cycle.",
    "leakage_finding.created": "The leakage scanner found revenue that should have been billed.",
}
