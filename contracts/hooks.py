"""Where a module above contracts reacts to a change of a contract or a customer, without the
contracts module importing it.

Billing registers from its AppConfig.ready(): a held draft invoice is checked again when its
contract's terms or its customer change (the PO added by an amendment, a billing e-mail added), so
its hold reasons say what is wrong now. The contracts services call ``contract_changed`` /
``customer_changed`` inside the transaction of the change; a listener that fails rolls it back.
"""

from __future__ import annotations

from collections.abc import Callable

_contract: list[Callable] = []
_customer: list[Callable] = []


def on_contract_changed(func: Callable) -> Callable:
    """Register ``func(*, contract_id)``."""
    if func not in _contract:
        _contract.append(func)
    return func


def on_customer_changed(func: Callable) -> Callable:
    """Register ``func(*, customer_id)``."""
    if func not in _customer:
        _customer.append(func)
    return func


def contract_changed(*, contract_id: int) -> None:
    for func in _contract:
        func(contract_id=contract_id)


def customer_changed(*, customer_id: int) -> None:
    for func in _customer:
        func(customer_id=customer_id)
