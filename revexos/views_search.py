"""The search page behind the shell's search box."""

from __future__ import annotations

from django.shortcuts import render

from revexos.accounts.decorators import requires
from revexos.search import MAX_QUERY, MIN_QUERY, search, search_text


@requires("dashboard.view")
def search_page(request):
    raw = request.GET.get("q", "")
    text = search_text(raw)
    groups = search(user=request.user, text=text) if text else []
    problem = ""
    if raw.strip() and text is None:
        problem = (
            f"Type at least {MIN_QUERY} characters."
            if len(raw.strip()) < MIN_QUERY
            else f"Search for at most {MAX_QUERY} characters of plain text."
        )
    return render(
        request,
        "search.html",
        {
            "q": raw[:MAX_QUERY],
            "text": text,
            "groups": groups,
            "found": sum(len(g.hits) for g in groups),
            "more": any(g.more for g in groups),
            "problem": problem,
        },
    )
