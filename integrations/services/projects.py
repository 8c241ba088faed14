"""Project tools → delivery events (Jira, Linear, Asana).

A done issue whose key is a milestone's reference (or whose done parent/epic's key is) becomes a
``milestone_completed`` delivery event through ``billing.services.ingestion.delivery_event_ingest``,
keyed ``<connection>:<reference>:done`` so however many deliveries report it, the milestone is
delivered once and invoiced once (the invoice's billing key). The delivery event is processed right
here, in the same worker pass, instead of waiting for one more hop through the broker.

Scope signals (story points, fix version, a change-request label, a Linear estimate) on an issue
that belongs to a contract (its project is mapped, or it is one of the contract's milestones) become
``scope_changed`` delivery events, which raise a scope-change review task.

A done issue that matches nothing raises one review task per key naming what could not be matched.
"""

from __future__ import annotations

from dataclasses import dataclass

from billing.models import ReviewTaskKind
from billing.services.ingestion import BILLABLE_STATUSES, delivery_event_ingest, delivery_event_process
from billing.services.reviews import review_task_raise
from integrations.models import Connection, InboxEvent, InboxStatus, Mapping, MappingKind
from integrations.services.connections import setting
from integrations.services.inbox import Outcome
from integrations.sources import asana as asana_source
from integrations.sources import jira as jira_source
from integrations.sources import linear as linear_source


@dataclass(frozen=True)
class _Match:
    contract_id: int
    number: str
    reference: str


def _milestone_matches(refs: list[str], *, statuses=BILLABLE_STATUSES) -> list[_Match]:
    """Contracts with a milestone (row or milestone price line) whose reference is one of ``refs``."""
    from contracts.models import Milestone, PriceLine

    found: dict[tuple[int, str], _Match] = {}
    for contract_id, number, ref in Milestone.objects.filter(
        reference__in=refs, contract__status__in=statuses
    ).values_list("contract_id", "contract__number", "reference"):
        found[(contract_id, ref)] = _Match(contract_id, number, ref)
    for contract_id, number, ref in PriceLine.objects.filter(
        kind="milestone", reference__in=refs, version__contract__status__in=statuses
    ).values_list("version__contract_id", "version__contract__number", "reference"):
        found.setdefault((contract_id, ref), _Match(contract_id, number, ref))
    # The issue's own key wins over its parent's.
    return sorted(found.values(), key=lambda m: (refs.index(m.reference), m.number))


def _project_contract(connection: Connection, project: str):
    if not project:
        return None
    mapping = (
        Mapping.objects.select_related("contract")
        .filter(connection=connection, kind=MappingKind.PROJECT, external=project)
        .first()
    )
    return mapping.contract if mapping else None


def _ingest_and_process(event: InboxEvent, data: dict) -> tuple[int, bool]:
    data.setdefault("occurred_at", event.received_at.isoformat())
    accepted = delivery_event_ingest(event=data, source=event.source)
    delivery_event_process(event_id=accepted.event_id)
    return accepted.event_id, accepted.duplicate


def milestone_done(
    *, event: InboxEvent, label: str, key: str, parent_keys: tuple[str, ...] = (), project: str = "", title: str = ""
) -> Outcome:
    """``label`` names the source and the issue for people, e.g. ``Jira PROJ-12``."""
    connection = event.connection
    refs = [key, *[p for p in parent_keys if p != key]]
    matches = _milestone_matches(refs)
    mapped = _project_contract(connection, project)
    if len(matches) > 1 and mapped is not None:
        matches = [m for m in matches if m.contract_id == mapped.pk] or matches
    if len({m.contract_id for m in matches}) > 1 and matches[0].reference == key:
        matches = [m for m in matches if m.reference == key]
    if len({m.contract_id for m in matches}) > 1:
        numbers = ", ".join(sorted({m.number for m in matches}))
        text = f"{label} is done, but several contracts have a milestone with that reference ({numbers})"
        review_task_raise(
            kind=ReviewTaskKind.UNKNOWN_MILESTONE,
            dedupe_key=f"integrations:ambiguous:{connection.source}:{key}",
            title=text,
            detail=f"Map the {connection.get_source_display()} project {project or '(unknown)'} to one contract "
            "in Integrations, then replay the event.",
        )
        return Outcome(InboxStatus.UNMATCHED, text + ". A review task was raised.")
    if matches:
        match = matches[0]
        delivery_id, duplicate = _ingest_and_process(
            event,
            {
                "kind": "milestone_completed",
                "contract": match.number,
                "milestone_ref": match.reference,
                "external_id": f"{connection.pk}:{match.reference}:done",
                "description": f"{label} done" + (f": {title}" if title else ""),
            },
        )
        via = "" if match.reference == key else f" (its parent {match.reference})"
        return Outcome(
            InboxStatus.PROCESSED,
            f"{label} done{via} → milestone {match.reference} of {match.number} delivered"
            + (" (already recorded earlier)" if duplicate else f" (delivery event #{delivery_id})."),
            match.contract_id,
        )
    if mapped is not None:
        return Outcome(
            InboxStatus.IGNORED,
            f"{label} is done; its project is mapped to {mapped.number}, but it is not one of its milestones. Nothing to bill.",
            mapped.pk,
        )
    drafts = _milestone_matches(refs, statuses=("draft",))
    if drafts:
        text = f"{label} is done, but the contract with that milestone ({drafts[0].number}) is still a draft"
        detail = "Activate the contract, then replay the event from the connection's inbox."
    else:
        text = f"{label} is done but no contract has a milestone with that reference"
        detail = (
            f"Add a milestone with reference {key} to the right contract (an amendment), or map the "
            f"{connection.get_source_display()} project to a contract; then replay the event."
        )
    review_task_raise(
        kind=ReviewTaskKind.UNKNOWN_MILESTONE,
        dedupe_key=f"integrations:unmatched:{connection.source}:{key}",
        title=text,
        detail=detail + (f"\n\nIssue: {title}" if title else ""),
        contract_id=drafts[0].contract_id if drafts else None,
    )
    return Outcome(InboxStatus.UNMATCHED, text + ". A review task was raised.")


def scope_changed(*, event: InboxEvent, label: str, key: str, project: str, changes: list[str], title: str) -> Outcome:
    contract = _project_contract(event.connection, project)
    if contract is None:
        matches = _milestone_matches([key])
        if len({m.contract_id for m in matches}) == 1:
            from contracts.models import Contract

            contract = Contract.objects.get(pk=matches[0].contract_id)
    if contract is None:
        return Outcome(
            InboxStatus.IGNORED,
            f"{label}: {'; '.join(changes)}. No contract is mapped to its project; nothing to review.",
        )
    _ingest_and_process(
        event,
        {
            "kind": "scope_changed",
            "contract": contract.number,
            "external_id": f"{event.connection_id}:{key}:scope:{event.event_id}"[:200],
            "description": f"{label} ({title}): {'; '.join(changes)}" if title else f"{label}: {'; '.join(changes)}",
        },
    )
    return Outcome(
        InboxStatus.PROCESSED,
        f"{label}: {'; '.join(changes)} → scope-change review for {contract.number}.",
        contract.pk,
    )


def _combine(outcomes: list[Outcome], fallback: Outcome) -> Outcome:
    if not outcomes:
        return fallback
    rank = {InboxStatus.UNMATCHED: 0, InboxStatus.PROCESSED: 1, InboxStatus.IGNORED: 2}
    status = min((o.status for o in outcomes), key=lambda s: rank.get(s, 3))
    contract = next((o.contract_id for o in outcomes if o.contract_id), None)
    return Outcome(status, " ".join(o.text for o in outcomes), contract)


# --------------------------------------------------------------------------- sources


def jira_handle(event: InboxEvent) -> Outcome:
    import json

    payload = json.loads(bytes(event.body))
    kind = payload.get("webhookEvent") if isinstance(payload, dict) else None
    if kind != "jira:issue_updated":
        return Outcome(InboxStatus.IGNORED, f"Jira event {kind or '(no type)'} is not one RevExOS acts on.")
    facts = jira_source.issue_facts(payload, change_label=setting(event.connection, "change_label"))
    if facts is None:
        return Outcome(InboxStatus.IGNORED, "The event names no issue.")
    label = f"Jira {facts.key}"
    outcomes = []
    if facts.done:
        outcomes.append(
            milestone_done(
                event=event,
                label=label,
                key=facts.key,
                parent_keys=facts.parent_keys,
                project=facts.project,
                title=facts.summary,
            )
        )
    if facts.scope_changes:
        outcomes.append(
            scope_changed(
                event=event,
                label=label,
                key=facts.key,
                project=facts.project,
                changes=list(facts.scope_changes),
                title=facts.summary,
            )
        )
    return _combine(outcomes, Outcome(InboxStatus.IGNORED, f"{label} updated; not done and no scope change."))


def linear_handle(event: InboxEvent) -> Outcome:
    import json

    payload = json.loads(bytes(event.body))
    facts = linear_source.issue_facts(payload) if isinstance(payload, dict) else None
    if facts is None:
        kind = f"{payload.get('type')}.{payload.get('action')}" if isinstance(payload, dict) else "(unknown)"
        return Outcome(InboxStatus.IGNORED, f"Linear {kind} is not an event RevExOS acts on.")
    label = f"Linear {facts.identifier}"
    outcomes = []
    if facts.completed:
        outcomes.append(
            milestone_done(event=event, label=label, key=facts.identifier, project=facts.team, title=facts.title)
        )
    if facts.estimate_change:
        outcomes.append(
            scope_changed(
                event=event,
                label=label,
                key=facts.identifier,
                project=facts.team,
                changes=[facts.estimate_change],
                title=facts.title,
            )
        )
    return _combine(outcomes, Outcome(InboxStatus.IGNORED, f"{label} updated; not completed."))


def asana_handle(event: InboxEvent) -> Outcome:
    import json

    from integrations.clients import asana_task_fetch

    payload = json.loads(bytes(event.body))
    gids = asana_source.task_gids_to_check(payload) if isinstance(payload, dict) else []
    if not gids:
        return Outcome(InboxStatus.IGNORED, "No task changes that could be a completion.")
    outcomes = []
    for gid in gids:
        task = asana_task_fetch(event.connection, gid)
        if not task.get("completed"):
            outcomes.append(Outcome(InboxStatus.IGNORED, f"Asana task {gid} changed; not completed."))
            continue
        projects = [str(p.get("gid")) for p in task.get("projects") or [] if isinstance(p, dict)]
        project = next((p for p in projects if _project_contract(event.connection, p)), projects[0] if projects else "")
        outcomes.append(
            milestone_done(
                event=event,
                label=f"Asana task {gid}",
                key=gid,
                project=project,
                title=str(task.get("name", ""))[:200],
            )
        )
    return _combine(outcomes, Outcome(InboxStatus.IGNORED, "Nothing completed."))
