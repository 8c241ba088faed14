"""Contracts: create, edit, amend, activate. One transaction each; one validation path.

Rules that live here:

- A contract's first version takes effect on its start date.
- A version that has taken effect (``effective_from`` today or earlier) is never edited; change
  terms by amending. Drafts are the exception: they were never billed.
- An amendment is a new version effective from a date after the latest version's and inside
  the contract. Unchanged terms and lines are copied; lines keep their ``line_ref`` so billing
  keys survive. Given ``price_lines`` are the complete new set: a line continues an old one when
  it names its ``line_ref``, or else when kind and description (milestones: reference) match.
- Line refs are ``L1``, ``L2``, … numbered per contract and never reused for another line.
- Every milestone price line has a Milestone row (its delivery state), kept in step with the
  latest version; a pending milestone whose line is removed is cancelled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from contracts.diffing import TermsDiff, terms_diff
from contracts.hooks import contract_changed
from contracts.models import (
    Contract,
    ContractStatus,
    ContractVersion,
    IssuingEntity,
    Milestone,
    MilestoneStatus,
    PriceLine,
    PriceLineKind,
)
from contracts.selectors import customer_by_ref, issuing_entity_by_ref
from contracts.services._audit import stamp
from contracts.services.issuing_entities import issuing_entity_default, issuing_entity_default_existing
from contracts.wire import (
    TERMS_FIELDS,
    CleanLine,
    CleanTerms,
    FieldErrors,
    Reader,
    contract_dates_check,
    contract_read,
    price_lines_check_together,
    terms_read,
    terms_to_wire,
)
from revexos.parsing import ref_or_error
from revexos.webhooks.publish import event_publish

SIGNED_DOCUMENT_TYPES = (".pdf", ".docx", ".doc", ".png", ".jpg", ".jpeg")
SIGNED_DOCUMENT_MAX_BYTES = 20 * 1024 * 1024
CLOSED_STATUSES = (ContractStatus.EXPIRED, ContractStatus.TERMINATED, ContractStatus.RENEWED)
_REF_NUMBER = re.compile(r"^L(\d+)$")


def _today() -> date:
    return timezone.localdate()


def version_is_editable(version: ContractVersion, contract: Contract | None = None) -> bool:
    contract = contract or version.contract
    return contract.status == ContractStatus.DRAFT or not version.has_taken_effect(_today())


# ----------------------------------------------------------------------------- preparing


@dataclass
class PreparedContract:
    values: dict[str, Any]
    terms: CleanTerms


def _owner(email: str, errors: FieldErrors):
    from revexos.accounts.models import User

    if not email:
        return None
    user = User.objects.filter(email__iexact=email, is_active=True).first()
    if user is None:
        errors.add("owner", f"No active user has the e-mail {email}.")
    return user


def _signed_document_check(document, errors: FieldErrors) -> None:
    if document is None:
        return
    name = (document.name or "").lower()
    if not name.endswith(SIGNED_DOCUMENT_TYPES):
        errors.add("signed_document", "Upload the signed contract as PDF, Word or an image (PNG, JPEG).")
    elif document.size > SIGNED_DOCUMENT_MAX_BYTES:
        errors.add("signed_document", "The signed document is larger than 20 MB.")


def _assign_refs(
    lines: list[CleanLine],
    errors: FieldErrors,
    *,
    used: set[str],
    previous: list[PriceLine] | None = None,
    retired: set[str] = frozenset(),
) -> None:
    """Give every line its ``line_ref``: the one it names, the old line it continues, or the next L<n>."""
    taken: set[str] = set()
    unmatched = list(previous or [])

    def claim(ref: str, clean: CleanLine) -> None:
        clean.line.line_ref = ref
        taken.add(ref)

    for index, clean in enumerate(lines):
        ref = clean.requested_ref
        if not ref:
            continue
        name = f"price_lines.{index}.line_ref"
        if ref in taken:
            errors.add(name, f"Two lines use the line reference {ref}; each line has its own.")
            continue
        old = next((p for p in unmatched if p.line_ref == ref), None)
        if old is not None:
            if old.kind != clean.line.kind:
                errors.add(
                    name,
                    f"Line {ref} is a {old.get_kind_display().lower()} line; to change its kind, remove it and add a new line.",
                )
                continue
            unmatched.remove(old)
        elif ref in retired:
            errors.add(name, f"line_ref {ref} belonged to a line removed earlier; leave line_ref empty for a new line.")
            continue
        claim(ref, clean)
    for clean in lines:
        if clean.line.line_ref or clean.requested_ref or not clean.line.kind:
            continue
        line = clean.line
        match = None
        if line.kind == PriceLineKind.MILESTONE and line.reference:
            match = next((p for p in unmatched if p.kind == line.kind and p.reference == line.reference), None)
        if match is None:
            match = next((p for p in unmatched if p.kind == line.kind and p.description == line.description), None)
        if match is not None:
            unmatched.remove(match)
            claim(match.line_ref, clean)
    numbers = [int(m.group(1)) for ref in used | taken if (m := _REF_NUMBER.match(ref))]
    next_number = max(numbers, default=0) + 1
    for clean in lines:
        if not clean.line.line_ref:
            while f"L{next_number}" in used or f"L{next_number}" in taken:
                next_number += 1
            claim(f"L{next_number}", clean)
            next_number += 1


def contract_validate(*, data: Any) -> PreparedContract:
    """Everything :func:`contract_create` checks, without writing; raises ValidationError."""
    errors = FieldErrors()
    clean = contract_read(data, errors)
    values = clean.values
    customer = None
    if clean.customer_ref:
        customer = customer_by_ref(clean.customer_ref)
        if customer is None:
            errors.add("customer", f"No customer has the id or external id “{clean.customer_ref}”.")
    values["customer"] = customer
    if values.get("number") and Contract.objects.filter(number=values["number"]).exists():
        errors.add("number", f"A contract numbered {values['number']} already exists.")
    if clean.issuing_entity_ref:
        entity = issuing_entity_by_ref(clean.issuing_entity_ref)
        if entity is None:
            errors.add("issuing_entity", f"No issuing entity has the id, prefix or name “{clean.issuing_entity_ref}”.")
        values["issuing_entity"] = entity
    values["owner"] = _owner(clean.owner_email, errors)
    terms = clean.terms
    if not terms.currency and not errors.has("currency"):
        terms.currency = customer.currency if customer is not None else "USD"
    if not clean.issuing_entity_ref and not errors.has("currency"):
        try:
            issuing_entity_default_existing(currency=terms.currency)
        except ValidationError as exc:
            errors.merge(exc)
    contract_dates_check(values, errors)
    lines = terms.price_lines or []
    price_lines_check_together(lines, errors, start=values.get("start_date"), end=values.get("end_date"))
    if not lines and values.get("status") != ContractStatus.DRAFT:
        errors.add("price_lines", "An active contract needs at least one price line (or post it with status draft).")
    _assign_refs(lines, errors, used=set())
    errors.raise_if_any()
    return PreparedContract(values=values, terms=terms)


def _write_version(
    *,
    contract: Contract,
    number: int,
    effective_from: date,
    terms: CleanTerms,
    lines: list[CleanLine],
    user=None,
    reason: str = "",
    note: str = "",
    issuing_entity_id: int | None = None,
) -> ContractVersion:
    version = ContractVersion(
        contract=contract,
        version=number,
        effective_from=effective_from,
        issuing_entity_id=issuing_entity_id,
        currency=terms.currency,
        payment_terms_days=terms.payment_terms_days,
        po_number=terms.po_number,
        po_required=bool(terms.po_required),
        billing_anchor=terms.billing_anchor,
        reason=reason,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    stamp(version, user=user, note=note)
    version.save()
    _write_lines(version=version, lines=lines, user=user, note=note)
    return version


def _write_lines(*, version: ContractVersion, lines: list[CleanLine], user=None, note: str = "") -> None:
    for position, clean in enumerate(lines, start=1):
        line = clean.line
        line.pk = None
        line.version = version
        line.position = position
        stamp(line, user=user, note=note)
        line.save()
        for index, tier in enumerate(clean.tiers, start=1):
            tier.pk = None
            tier.price_line = line
            tier.position = index
            stamp(tier, user=user, note=note)
            tier.save()
        for rate in clean.rates:
            rate.pk = None
            rate.price_line = line
            stamp(rate, user=user, note=note)
            rate.save()


def _milestones_sync(*, contract: Contract, user=None, note: str = "") -> None:
    """Keep one Milestone per milestone line of the latest version; cancel pending ones removed."""
    latest = contract.versions.order_by("-effective_from").first()
    lines = {pl.line_ref: pl for pl in latest.price_lines.filter(kind=PriceLineKind.MILESTONE)} if latest else {}
    existing = {m.line_ref: m for m in Milestone.objects.select_for_update().filter(contract=contract)}
    for ref, milestone in existing.items():
        if ref not in lines and milestone.status == MilestoneStatus.PENDING:
            milestone.status = MilestoneStatus.CANCELLED
            milestone.reference = ""  # frees the reference for the line that replaces it
            stamp(milestone, user=user, note=note)
            milestone.save()
    for ref, line in lines.items():
        milestone = existing.get(ref)
        if milestone is None:
            milestone = Milestone(contract=contract, line_ref=ref)
        elif milestone.status not in (MilestoneStatus.PENDING, MilestoneStatus.CANCELLED):
            continue  # delivered or invoiced: what happened stays as it was
        else:
            milestone.status = MilestoneStatus.PENDING
        milestone.name, milestone.reference, milestone.expected_date = (
            line.description,
            line.reference,
            line.expected_date,
        )
        stamp(milestone, user=user, note=note)
        milestone.save()


def _delivered_milestones_check(
    *, contract: Contract, previous: list[PriceLine], lines: list[CleanLine], errors: FieldErrors
) -> None:
    """A delivered milestone has been (or is about to be) billed at its amount: the amount stays,
    and the line stays until it is invoiced, so an amendment can never lose or reprice it."""
    done = {
        m.line_ref: m
        for m in Milestone.objects.filter(
            contract=contract,
            status__in=[MilestoneStatus.DELIVERED, MilestoneStatus.INVOICED],
        )
    }
    if not done:
        return
    old = {p.line_ref: p for p in previous if p.kind == PriceLineKind.MILESTONE}
    kept = set()
    for index, clean in enumerate(lines):
        ref = clean.line.line_ref
        milestone = done.get(ref)
        if milestone is None or ref not in old:
            continue
        kept.add(ref)
        before = old[ref]
        if (clean.line.amount, clean.line.percent_of_fixed_fee) != (before.amount, before.percent_of_fixed_fee):
            errors.add(
                f"price_lines.{index}.amount",
                f"Milestone “{milestone.name}” was {milestone.get_status_display().lower()} on "
                f"{milestone.delivered_at:%-d %b %Y}; its amount can no longer change.",
            )
    for ref, milestone in done.items():
        if ref in old and ref not in kept and milestone.status == MilestoneStatus.DELIVERED:
            errors.add(
                "price_lines",
                f"Milestone “{milestone.name}” ({ref}) was delivered and is not invoiced yet; keep its line until it is invoiced.",
            )


def _integrity_to_validation(exc: IntegrityError) -> ValidationError:
    text = str(exc)
    if "milestone_reference_unique" in text:
        return ValidationError(
            {"price_lines": ["Two milestones of this contract would share a reference; give each its own."]}
        )
    if "number" in text and "contract" in text:
        return ValidationError({"number": ["A contract with this number already exists."]})
    return ValidationError({"non_field_errors": [f"The change conflicts with existing data: {text.splitlines()[0]}"]})


# ----------------------------------------------------------------------------- create and update


def contract_event_data(contract: Contract) -> dict[str, Any]:
    """What a contract event tells receivers (the API has the rest)."""
    return {
        "contract": {
            "id": str(contract.pk),
            "number": contract.number,
            "title": contract.title,
            "status": contract.status,
            "customer": contract.customer.external_id,
            "start_date": contract.start_date.isoformat() if contract.start_date else None,
            "end_date": contract.end_date.isoformat() if contract.end_date else None,
        }
    }


def contract_create(*, data: Any, user=None, signed_document=None, note: str = "") -> Contract:
    """Create a contract and its first version from the wire form (DESIGN.md §5)."""
    errors = FieldErrors()
    _signed_document_check(signed_document, errors)
    errors.raise_if_any()
    try:
        with transaction.atomic():
            prepared = contract_validate(data=data)
            values = dict(prepared.values)
            if values.get("issuing_entity") is None:
                values["issuing_entity"] = issuing_entity_default(currency=prepared.terms.currency)
            contract = Contract(**values)
            if signed_document is not None:
                contract.signed_document = signed_document
            stamp(contract, user=user, note=note or "Contract created")
            contract.save()
            _write_version(
                contract=contract,
                number=1,
                effective_from=contract.start_date,
                terms=prepared.terms,
                lines=prepared.terms.price_lines or [],
                user=user,
                note=note or "Contract created",
            )
            _milestones_sync(contract=contract, user=user, note=note or "Contract created")
            if contract.status == ContractStatus.ACTIVE:
                event_publish(
                    "contract.activated", contract_event_data(contract), key=f"contract.activated:{contract.pk}"
                )
    except IntegrityError as exc:
        raise _integrity_to_validation(exc) from exc
    return contract


def contract_update(*, contract: Contract, data: Mapping[str, Any], user=None, signed_document=None) -> Contract:
    """Change a contract's own fields and, while the latest version is not yet in force (or the
    contract is a draft), that version's terms. Terms in force change only by amendment."""
    errors = FieldErrors()
    _signed_document_check(signed_document, errors)
    try:
        with transaction.atomic():
            contract = Contract.objects.select_for_update().select_related("customer").get(pk=contract.pk)
            clean = contract_read(data, errors, partial=True)
            values = clean.values
            versions = list(contract.versions.order_by("effective_from"))
            first, latest = versions[0], versions[-1]
            today = _today()
            was_draft = contract.status == ContractStatus.DRAFT
            if "customer" in data and clean.customer_ref:
                customer = customer_by_ref(clean.customer_ref)
                if customer is None:
                    errors.add("customer", f"No customer has the id or external id “{clean.customer_ref}”.")
                elif customer.pk != contract.customer_id and not was_draft:
                    errors.add(
                        "customer",
                        "The customer of a signed contract cannot change; terminate it and create a new contract.",
                    )
                values["customer"] = customer
            if "issuing_entity" in data and clean.issuing_entity_ref:
                entity = issuing_entity_by_ref(clean.issuing_entity_ref)
                if entity is None:
                    errors.add(
                        "issuing_entity", f"No issuing entity has the id, prefix or name “{clean.issuing_entity_ref}”."
                    )
                values["issuing_entity"] = entity
            if "owner" in data:
                values["owner"] = _owner(clean.owner_email, errors)
            if (
                values.get("number")
                and Contract.objects.filter(number=values["number"]).exclude(pk=contract.pk).exists()
            ):
                errors.add("number", f"A contract numbered {values['number']} already exists.")
            if values.get("status") == ContractStatus.DRAFT and not was_draft:
                errors.add("status", "A signed contract cannot go back to draft.")
            merged = {
                k: values.get(k, getattr(contract, k))
                for k in ("start_date", "end_date", "auto_renew", "billed_through")
            }
            contract_dates_check(merged, errors)
            new_start = values.get("start_date")
            if new_start and new_start != contract.start_date:
                if first.has_taken_effect(today) and not was_draft:
                    errors.add(
                        "start_date", "The first terms are already in force, so the start date can no longer change."
                    )
                elif len(versions) > 1 and new_start >= versions[1].effective_from:
                    errors.add(
                        "start_date",
                        f"The start date must be before version 2 takes effect ({versions[1].effective_from:%-d %b %Y}).",
                    )
            end = merged["end_date"]
            if end and end < latest.effective_from:
                errors.add(
                    "end_date",
                    f"Version {latest.version} takes effect on {latest.effective_from:%-d %b %Y}; the end date cannot be before it.",
                )

            terms_given = any(k in data for k in (*TERMS_FIELDS, "price_lines"))
            new_terms = None
            if terms_given:
                if not version_is_editable(latest, contract):
                    errors.add(
                        "non_field_errors",
                        f"Version {latest.version} is in force since {latest.effective_from:%-d %b %Y} and cannot be edited; amend the contract instead.",
                    )
                else:
                    new_terms = _merged_terms(latest, clean.terms)
                    if new_terms.price_lines is not None:
                        older = _refs_used(contract, exclude_version=latest)
                        current = list(latest.price_lines.all())
                        _assign_refs(
                            new_terms.price_lines,
                            errors,
                            used=older | {p.line_ref for p in current},
                            previous=current,
                            retired=older - {p.line_ref for p in current},
                        )
                        start = merged["start_date"]
                        price_lines_check_together(new_terms.price_lines, errors, start=start, end=end)
                        _delivered_milestones_check(
                            contract=contract, previous=current, lines=new_terms.price_lines, errors=errors
                        )
                        status = values.get("status", contract.status)
                        if not new_terms.price_lines and status != ContractStatus.DRAFT:
                            errors.add("price_lines", "An active contract needs at least one price line.")
            errors.raise_if_any()

            for key, value in values.items():
                if key in ("customer", "issuing_entity") and value is None:
                    continue
                setattr(contract, key, value)
            if signed_document is not None:
                contract.signed_document = signed_document
            stamp(contract, user=user, note="Contract updated")
            contract.save()
            if new_start and new_start != first.effective_from and first.version == 1:
                first.effective_from = new_start
                stamp(first, user=user, note="Contract updated")
                first.save(update_fields=["effective_from"])
            if new_terms is not None:
                _replace_terms(version=latest, terms=new_terms, user=user, note="Contract updated")
            _milestones_sync(contract=contract, user=user, note="Contract updated")
            contract_changed(contract_id=contract.pk)
    except IntegrityError as exc:
        raise _integrity_to_validation(exc) from exc
    return contract


def _refs_used(contract: Contract, *, exclude_version: ContractVersion | None = None) -> set[str]:
    lines = PriceLine.objects.filter(version__contract=contract)
    if exclude_version is not None:
        lines = lines.exclude(version=exclude_version)
    return set(lines.values_list("line_ref", flat=True))


def _merged_terms(version: ContractVersion, given: CleanTerms) -> CleanTerms:
    """The version's terms with what ``given`` changes (None/empty = keep, except po_number when given)."""
    return CleanTerms(
        currency=given.currency or version.currency,
        payment_terms_days=given.payment_terms_days
        if given.payment_terms_days is not None
        else version.payment_terms_days,
        po_number=given.po_number if "po_number" in given.given else version.po_number,
        po_required=given.po_required if given.po_required is not None else version.po_required,
        billing_anchor=given.billing_anchor or version.billing_anchor,
        price_lines=given.price_lines,
        given=given.given,
    )


def _copy_lines(version: ContractVersion) -> list[CleanLine]:
    copies = []
    for line in version.price_lines.prefetch_related("tiers", "rates").order_by("position", "id"):
        tiers, rates = list(line.tiers.all()), list(line.rates.all())
        clean = CleanLine(line=line, tiers=tiers, rates=rates)
        copies.append(clean)
    return copies


def _replace_terms(*, version: ContractVersion, terms: CleanTerms, user=None, note: str = "") -> None:
    version.currency, version.payment_terms_days = terms.currency, terms.payment_terms_days
    version.po_number, version.po_required, version.billing_anchor = (
        terms.po_number,
        bool(terms.po_required),
        terms.billing_anchor,
    )
    stamp(version, user=user, note=note)
    version.save()
    if terms.price_lines is not None:
        for line in version.price_lines.all():
            stamp(line, user=user, note=note)
            line.delete()
        _write_lines(version=version, lines=terms.price_lines, user=user, note=note)


@transaction.atomic
def contract_activate(*, contract: Contract, user=None) -> Contract:
    """Sign a draft: it becomes active and billing starts to consider it."""
    contract = Contract.objects.select_for_update().get(pk=contract.pk)
    if contract.status != ContractStatus.DRAFT:
        raise ValidationError(
            {"status": [f"Only a draft can be activated; this contract is {contract.get_status_display().lower()}."]}
        )
    if not PriceLine.objects.filter(version__contract=contract).exists():
        raise ValidationError({"price_lines": ["Add at least one price line before activating the contract."]})
    contract.status = ContractStatus.ACTIVE
    stamp(contract, user=user, note="Contract activated")
    contract.save(update_fields=["status", "updated_at"])
    event_publish("contract.activated", contract_event_data(contract), key=f"contract.activated:{contract.pk}")
    return contract


# ----------------------------------------------------------------------------- amendments


@dataclass
class PreparedAmendment:
    contract: Contract
    previous: ContractVersion
    number: int
    effective_from: date
    reason: str
    terms: CleanTerms
    lines: list[CleanLine]
    diff: TermsDiff
    issuing_entity_id: int | None = None  # the version's own entity (None: the contract's)


AMENDMENT_KEYS = (*TERMS_FIELDS, "price_lines", "reason", "effective_from", "issuing_entity")


def contract_amend_prepare(*, contract: Contract, effective_from: Any, changes: Mapping[str, Any]) -> PreparedAmendment:
    """Validate an amendment and compute its diff against the terms it replaces, writing nothing."""
    errors = FieldErrors()
    if not isinstance(changes, Mapping):
        raise ValidationError({"non_field_errors": ["Send the amendment as a JSON object."]})
    r = Reader({"effective_from": effective_from, **changes}, errors)
    r.unknown_keys(AMENDMENT_KEYS)
    when = r.date("effective_from", required=True)
    reason = r.text("reason", max_length=500)
    given = terms_read(changes, errors, defaults=False)
    previous_for_entity = contract.versions.order_by("-effective_from").first()
    entity_id = previous_for_entity.issuing_entity_id if previous_for_entity is not None else None
    if not _blank_value(changes.get("issuing_entity")):
        try:
            entity = issuing_entity_by_ref(ref_or_error(changes["issuing_entity"], what="issuing entity"))
        except ValueError as exc:
            errors.add("issuing_entity", str(exc))
        else:
            if entity is None:
                errors.add(
                    "issuing_entity", f"No issuing entity has the id, prefix or name “{changes['issuing_entity']}”."
                )
            else:
                entity_id = None if entity.pk == contract.issuing_entity_id else entity.pk
    if contract.status in CLOSED_STATUSES:
        errors.add(
            "non_field_errors",
            f"This contract is {contract.get_status_display().lower()}; only draft and active contracts can be amended.",
        )
    previous = contract.versions.order_by("-effective_from").first()
    if when and previous is not None and when <= previous.effective_from:
        errors.add(
            "effective_from",
            f"An amendment must take effect after version {previous.version} ({previous.effective_from:%-d %b %Y}).",
        )
    if when and when < contract.start_date:
        errors.add(
            "effective_from",
            f"The contract starts on {contract.start_date:%-d %b %Y}; an amendment cannot take effect before it.",
        )
    if when and contract.end_date and when > contract.end_date:
        errors.add(
            "effective_from",
            f"The contract ends on {contract.end_date:%-d %b %Y}; an amendment must take effect before that.",
        )
    terms = _merged_terms(previous, given)
    if given.price_lines is None:
        lines = _copy_lines(previous)
    else:
        lines = given.price_lines
        used = _refs_used(contract)
        current_refs = set(previous.price_lines.values_list("line_ref", flat=True))
        previous_lines = list(previous.price_lines.all())
        _assign_refs(lines, errors, used=used, previous=previous_lines, retired=used - current_refs)
        price_lines_check_together(lines, errors, start=contract.start_date, end=contract.end_date)
        _delivered_milestones_check(contract=contract, previous=previous_lines, lines=lines, errors=errors)
        if not lines and contract.status != ContractStatus.DRAFT:
            errors.add(
                "price_lines",
                "An active contract needs at least one price line; to stop billing, terminate the contract.",
            )
    terms.price_lines = lines
    errors.raise_if_any()
    old_wire = terms_to_wire(previous, with_refs=True)
    new_wire = terms_to_wire(_TermsView(terms), lines=lines, with_refs=True)
    old_wire["issuing_entity"] = _entity_name(previous.issuing_entity_id_for(contract))
    new_wire["issuing_entity"] = _entity_name(entity_id or contract.issuing_entity_id)
    diff = terms_diff(old_wire, new_wire)
    if not diff.changed:
        raise ValidationError({"non_field_errors": ["The amendment changes nothing: change a term or a price line."]})
    return PreparedAmendment(
        contract=contract,
        previous=previous,
        number=contract.versions.count() + 1,
        effective_from=when,
        reason=reason,
        terms=terms,
        lines=lines,
        diff=diff,
        issuing_entity_id=entity_id,
    )


def _blank_value(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _entity_name(entity_id: int) -> str:
    return IssuingEntity.objects.filter(pk=entity_id).values_list("legal_name", flat=True).first() or ""


class _TermsView:
    """CleanTerms seen as a version, for the wire writer."""

    def __init__(self, terms: CleanTerms) -> None:
        self.currency, self.payment_terms_days, self.po_number = (
            terms.currency,
            terms.payment_terms_days,
            terms.po_number,
        )
        self.po_required, self.billing_anchor = bool(terms.po_required), terms.billing_anchor


def contract_amend(
    *, contract: Contract, effective_from: Any, changes: Mapping[str, Any], user=None
) -> ContractVersion:
    """Create version N+1 with the changed terms, in force from ``effective_from``."""
    try:
        with transaction.atomic():
            contract = Contract.objects.select_for_update().get(pk=contract.pk)
            prepared = contract_amend_prepare(contract=contract, effective_from=effective_from, changes=changes)
            note = f"Amendment v{prepared.number} from {prepared.effective_from:%-d %b %Y}"
            lines = prepared.lines
            if prepared.terms.price_lines is not None and lines and lines[0].line.pk is not None:
                # Copied lines are rows of the previous version: write them as new rows.
                lines = [
                    CleanLine(
                        line=_clone(c.line), tiers=[_clone(t) for t in c.tiers], rates=[_clone(r) for r in c.rates]
                    )
                    for c in lines
                ]
            version = _write_version(
                contract=contract,
                number=prepared.number,
                effective_from=prepared.effective_from,
                terms=prepared.terms,
                lines=lines,
                user=user,
                reason=prepared.reason,
                note=note,
                issuing_entity_id=prepared.issuing_entity_id,
            )
            stamp(contract, user=user, note=note)
            contract.save(update_fields=["updated_at"])
            _milestones_sync(contract=contract, user=user, note=note)
            contract_changed(contract_id=contract.pk)
            event_publish(
                "contract.amended",
                {
                    **contract_event_data(contract),
                    "version": version.version,
                    "effective_from": version.effective_from.isoformat(),
                },
                key=f"contract.amended:{version.pk}",
            )
    except IntegrityError as exc:
        raise _integrity_to_validation(exc) from exc
    return version


def _clone(obj):
    from copy import copy

    twin = copy(obj)
    twin.pk = None
    twin.id = None
    twin._state = type(obj._state)()
    twin._state.adding = True
    return twin
