"""Where a module above discounts reacts to a discount's change without discounts importing it.

Billing sits above discounts (it applies them to invoices). When a discount is revoked, ended early
or extended, the draft invoices it touches must be recomputed; billing registers that from its
AppConfig.ready() with ``on_discount_changed``. The discounts services call ``discount_changed``
inside the transaction of the change, so a listener that fails rolls the change back.
"""

from __future__ import annotations

from collections.abc import Callable

_changed: list[Callable] = []


def on_discount_changed(func: Callable) -> Callable:
    """Register ``func(*, discount)``."""
    if func not in _changed:
        _changed.append(func)
    return func


def discount_changed(*, discount) -> None:
    for func in _changed:
        func(discount=discount)
