"""Cards that a higher module adds to a lower module's page, without the lower one importing it.

A page calls ``panels_render("customer_detail", request=request, obj=customer)`` and shows the
HTML it gets back; a module above registers ``panel_register("customer_detail", func)`` from its
AppConfig.ready(), where ``func(*, request, obj) -> str`` returns safe HTML (or "" for nothing).
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils.safestring import SafeString, mark_safe

_PANELS: dict[str, list[Callable]] = {}


def panel_register(page: str, func: Callable) -> Callable:
    funcs = _PANELS.setdefault(page, [])
    if func not in funcs:
        funcs.append(func)
    return func


def panels_render(page: str, *, request, obj) -> list[SafeString]:
    return [mark_safe(html) for func in _PANELS.get(page, []) if (html := func(request=request, obj=obj))]
