"""The scheduler's cycle: an ordered registry of steps run as of a date (DESIGN.md §5 ``/runs``).

Every module registers its step from its AppConfig.ready() with ``cycle_step_register`` — billing
(``billing/cycle.py``), and the modules below and above it (discounts' lifecycle runs before
billing, leakage after it). The registry lives here, at the bottom of the layers, so a module
below billing can join the cycle without importing billing. A step is ``run(*, as_of,
contract_ids=None) -> dict`` returning what it created and changed; a step that works per contract
also gives ``contract_ids(*, as_of)`` so the beat can split a large tenant into chunks for several
workers, and may give ``prepare(*, as_of)`` to run once before the chunks (e.g. an inbox sweep).

A step may also give ``due(*, as_of) -> list[QuerySet]``: the rows whose existence means it may
have work (a superset: any row at all of what it would act on). The beat asks every step at once
in one query (``cycle_steps_due``) before running anything, so a tenant with nothing due costs a
couple of queries; a step without ``due`` is always due.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ValidationError


@dataclass(frozen=True)
class CycleStep:
    name: str
    order: int
    run: Callable[..., dict]
    contract_ids: Callable[..., list[int]] | None = None
    prepare: Callable[..., dict] | None = None
    due: Callable[..., list] | None = None


_STEPS: dict[str, CycleStep] = {}


def cycle_step_register(
    name: str,
    *,
    order: int,
    run: Callable[..., dict],
    contract_ids: Callable[..., list[int]] | None = None,
    prepare: Callable[..., dict] | None = None,
    due: Callable[..., list] | None = None,
) -> CycleStep:
    step = CycleStep(name=name, order=order, run=run, contract_ids=contract_ids, prepare=prepare, due=due)
    _STEPS[name] = step
    return step


def cycle_steps(only: Iterable[str] | None = None) -> list[CycleStep]:
    """The steps to run, in order; unknown names in ``only`` are a validation error."""
    if only:
        unknown = sorted(set(only) - set(_STEPS))
        if unknown:
            raise ValidationError(
                {"only": [f"Unknown step {', '.join(unknown)}; the cycle has {', '.join(sorted(_STEPS))}."]}
            )
        wanted = set(only)
    else:
        wanted = set(_STEPS)
    return sorted((s for s in _STEPS.values() if s.name in wanted), key=lambda s: (s.order, s.name))


def cycle_run(*, as_of: date, only: Iterable[str] | None = None) -> dict:
    """Run the cycle in this process, step after step; returns each step's summary by name."""
    summary: dict[str, dict] = {}
    for step in cycle_steps(only):
        result: dict = {}
        if step.prepare is not None:
            result.update(step.prepare(as_of=as_of))
        result.update(step.run(as_of=as_of))
        summary[step.name] = result
    return summary


def cycle_steps_due(*, as_of: date, steps: list[CycleStep] | None = None) -> list[CycleStep]:
    """The steps that may have work as of ``as_of``, asked in one query (``SELECT EXISTS(...), ...``)."""
    from django.db import connection

    steps = cycle_steps() if steps is None else steps
    probes: list[tuple[str, list]] = []
    owners: list[int] = []
    always: set[int] = set()
    for n, step in enumerate(steps):
        if step.due is None:
            always.add(n)
            continue
        for queryset in step.due(as_of=as_of):
            sql, params = queryset.values("pk")[:1].query.sql_with_params()
            probes.append((f"EXISTS ({sql})", list(params)))
            owners.append(n)
    due = set(always)
    if probes:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {', '.join(p[0] for p in probes)}", [v for p in probes for v in p[1]])
            answers = cursor.fetchone()
        due.update(owner for owner, found in zip(owners, answers, strict=True) if found)
    return [step for n, step in enumerate(steps) if n in due]
