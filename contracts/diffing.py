"""Differences between two sets of contract terms, field by field (pure: wire dicts in).

Used to show an amendment against the terms it replaces before it is saved. Lines are matched by
``line_ref``, so a changed price shows as a change to the same obligation, not a remove and add.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TERM_LABELS = {
    "currency": "Currency",
    "payment_terms_days": "Payment terms (days)",
    "po_number": "PO number",
    "po_required": "PO required",
    "billing_anchor": "Billing anchor",
    "issuing_entity": "Issuing entity",
}


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: str
    new: str


@dataclass(frozen=True)
class LineChange:
    line_ref: str
    status: str  # added | removed | changed | unchanged
    kind: str
    description: str
    changes: tuple[FieldChange, ...] = ()


@dataclass(frozen=True)
class TermsDiff:
    terms: tuple[FieldChange, ...] = ()
    lines: tuple[LineChange, ...] = field(default_factory=tuple)

    @property
    def changed(self) -> bool:
        return bool(self.terms) or any(line.status != "unchanged" for line in self.lines)

    @property
    def counts(self) -> dict[str, int]:
        counts = {"added": 0, "removed": 0, "changed": 0, "unchanged": 0}
        for line in self.lines:
            counts[line.status] += 1
        return counts


def display(value: Any) -> str:
    """A compact human form of a wire value: tiers and rate cards on one line."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        parts = []
        for item in value:
            if isinstance(item, dict) and "role" in item:
                parts.append(f"{item['role']} {item['hourly_rate']}/h")
            elif isinstance(item, dict) and "up_to" in item:
                bound = f"≤{item['up_to']}" if item["up_to"] is not None else "above"
                price = item.get("unit_amount") if "unit_amount" in item else f"{item.get('rate')} %"
                flat = item.get("flat_amount")
                parts.append(f"{bound}: {price}" + (f" + {flat} flat" if _nonzero(flat) else ""))
            else:
                parts.append(str(item))
        return "; ".join(parts) or "—"
    return str(value)


def _nonzero(text: Any) -> bool:
    return text is not None and any(ch not in "0.-" for ch in str(text))


def terms_diff(old: dict[str, Any], new: dict[str, Any]) -> TermsDiff:
    """Compare two ``terms_to_wire(..., with_refs=True)`` dicts."""
    terms = tuple(
        FieldChange(field=TERM_LABELS.get(key, key), old=display(old.get(key)), new=display(new.get(key)))
        for key in TERM_LABELS
        if old.get(key) != new.get(key)
    )
    old_lines = {line["line_ref"]: line for line in old.get("price_lines", [])}
    new_refs = set()
    lines: list[LineChange] = []
    for line in new.get("price_lines", []):
        ref = line["line_ref"]
        new_refs.add(ref)
        before = old_lines.get(ref)
        if before is None:
            lines.append(LineChange(ref, "added", line["kind"], line["description"], _fields(None, line)))
            continue
        changes = _fields(before, line)
        lines.append(LineChange(ref, "changed" if changes else "unchanged", line["kind"], line["description"], changes))
    for ref, line in old_lines.items():
        if ref not in new_refs:
            lines.append(LineChange(ref, "removed", line["kind"], line["description"], _fields(line, None)))
    return TermsDiff(terms=terms, lines=tuple(lines))


def _fields(old: dict | None, new: dict | None) -> tuple[FieldChange, ...]:
    keys: list[str] = []
    for source in (old or {}, new or {}):
        keys += [k for k in source if k not in keys and k != "line_ref"]
    changes = []
    for key in keys:
        before = (old or {}).get(key)
        after = (new or {}).get(key)
        if old is not None and new is not None and before == after:
            continue
        if old is None and after in (None, "", []):
            continue
        if new is None and before in (None, "", []):
            continue
        changes.append(
            FieldChange(
                field=key.replace("_", " "), old=display(before) if old else "", new=display(after) if new else ""
            )
        )
    return tuple(changes)
