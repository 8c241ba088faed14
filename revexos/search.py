"""Global search: one box in the shell, results grouped by kind (invoices, customers, contracts, …).

Each module registers what it can find from its AppConfig.ready() with ``search_provider_register``
(so the shell, at the bottom of the layers, names no module above it): a provider is a function
``find(*, text, limit) -> list[SearchHit]`` running ONE query in the tenant's schema (the request's
schema: results never mix tenants) and the capability a user needs to see its kind. The query text
goes through the parsing layer (``revexos.parsing.clean_ref``: at most 100 printable characters, no
control characters) before any provider sees it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from revexos.accounts.roles import has_capability
from revexos.parsing import clean_ref

MAX_QUERY = 100
MIN_QUERY = 2
PER_KIND = 8


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    detail: str = ""
    matched: str = ""  # what matched when it is not the title (a PO number, an external id)


@dataclass(frozen=True)
class SearchProvider:
    kind: str  # "invoices"
    label: str  # "Invoices"
    order: int
    capability: str
    find: Callable[..., list[SearchHit]]


@dataclass
class SearchGroup:
    kind: str
    label: str
    hits: list[SearchHit] = field(default_factory=list)
    more: bool = False


_PROVIDERS: dict[str, SearchProvider] = {}


def search_provider_register(
    kind: str, *, label: str, order: int, capability: str, find: Callable[..., list[SearchHit]]
) -> SearchProvider:
    provider = SearchProvider(kind=kind, label=label, order=order, capability=capability, find=find)
    _PROVIDERS[kind] = provider
    return provider


def search_text(raw) -> str | None:
    """The query as providers get it, or None when it cannot be searched (empty, too short or
    long, control characters)."""
    text = clean_ref(raw, max_length=MAX_QUERY)
    if text is None or len(text) < MIN_QUERY:
        return None
    return text


def search(*, user, text: str, per_kind: int = PER_KIND) -> list[SearchGroup]:
    """Every kind the user may see, in order; a kind shows at most ``per_kind`` hits (``more`` says
    there were others: refine the query)."""
    groups = []
    for provider in sorted(_PROVIDERS.values(), key=lambda p: (p.order, p.kind)):
        if not has_capability(user, provider.capability):
            continue
        hits = provider.find(text=text, limit=per_kind + 1)
        groups.append(
            SearchGroup(kind=provider.kind, label=provider.label, hits=hits[:per_kind], more=len(hits) > per_kind)
        )
    return groups
