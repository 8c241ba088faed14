"""Money for RevExOS: the one place where amounts are rounded and split.

Why one module: rounding rules scattered over services drift apart (one line rounds
half-even, another truncates) and a discount spread over lines stops adding up. Every
exact ``Decimal`` becomes a billable amount through :func:`quantize`, and every amount
spread over parts goes through :func:`allocate`, so the parts always sum to the whole.

Rules (DESIGN.md §4): ``Decimal`` with an ISO 4217 currency code, rounded half-up
(ties away from zero, so 0.125 USD -> 0.13 and -0.125 -> -0.13) to the currency's minor
unit. ``float`` is refused everywhere: 0.1 as a float is already wrong before any
rounding happens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = [
    "CURRENCIES",
    "MINOR_UNITS",
    "CurrencyMismatch",
    "Money",
    "allocate",
    "format_money",
    "minor_units",
    "quantize",
    "split_evenly",
    "to_decimal",
]

# ISO 4217 minor unit digits. Add a code here before a tenant can bill in it.
MINOR_UNITS: dict[str, int] = {
    # two decimals
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CHF": 2,
    "CAD": 2,
    "AUD": 2,
    "NZD": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CZK": 2,
    "HUF": 2,
    "RON": 2,
    "INR": 2,
    "SGD": 2,
    "HKD": 2,
    "CNY": 2,
    "TWD": 2,
    "THB": 2,
    "MYR": 2,
    "PHP": 2,
    "IDR": 2,
    "ILS": 2,
    "AED": 2,
    "SAR": 2,
    "QAR": 2,
    "TRY": 2,
    "ZAR": 2,
    "EGP": 2,
    "NGN": 2,
    "KES": 2,
    "BRL": 2,
    "MXN": 2,
    "ARS": 2,
    "COP": 2,
    "PEN": 2,
    # no decimals
    "JPY": 0,
    "KRW": 0,
    "CLP": 0,
    "ISK": 0,
    "VND": 0,
    "UGX": 0,
    "PYG": 0,
    # three decimals
    "KWD": 3,
    "BHD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
    "IQD": 3,
    "LYD": 3,
}

# (value, label) choices for forms and model fields.
CURRENCIES: list[tuple[str, str]] = [(code, code) for code in sorted(MINOR_UNITS)]

_EXPONENTS: dict[int, Decimal] = {digits: Decimal(10) ** -digits for digits in set(MINOR_UNITS.values())}


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined; convert one of them first."""


def minor_units(currency: str) -> int:
    """Return the number of decimal places of ``currency`` (ISO 4217 code, upper case)."""
    try:
        return MINOR_UNITS[currency]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown currency {currency!r}: use an upper-case ISO 4217 code such as "
            f"USD, EUR, JPY or KWD (supported: {', '.join(sorted(MINOR_UNITS))})."
        ) from None


def to_decimal(value: Decimal | int | str, name: str = "amount") -> Decimal:
    """Return ``value`` as a finite ``Decimal``; ``float`` (and ``bool``) raise ``TypeError``.

    ``name`` is only used to make the error message point at the offending field.
    """
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool) or not isinstance(value, (int, str)):
        # bool is an int subclass; True as an amount is always a bug.
        raise TypeError(
            f"{name} must be a Decimal, int or str, not {type(value).__name__} "
            f"({value!r}); pass money and quantities as Decimal('…') or strings."
        )
    else:
        try:
            result = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise ValueError(f"{name} {value!r} is not a number.") from None
    if not result.is_finite():
        raise ValueError(f"{name} must be a finite number, not {value!r}.")
    return result


def quantize(amount: Decimal | int | str, currency: str) -> Decimal:
    """Round ``amount`` half-up to the minor unit of ``currency``."""
    exponent = _EXPONENTS[minor_units(currency)]
    value = to_decimal(amount)
    try:
        return value.quantize(exponent, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        # Only happens when the result has more digits than the decimal context holds.
        raise ValueError(f"{value} is too large to be a {currency} amount.") from None


@dataclass(frozen=True, slots=True)
class Money:
    """An amount with its currency; adding or comparing two currencies raises."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        minor_units(self.currency)  # rejects unknown codes early
        object.__setattr__(self, "amount", to_decimal(self.amount))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(quantize(0, currency), currency)

    def quantized(self) -> Money:
        return Money(quantize(self.amount, self.currency), self.currency)

    def _same_currency(self, other: Money, verb: str) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(
                f"Cannot {verb} {self} and {other}: amounts in different currencies are "
                f"never combined; convert one of them first."
            )

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "add")
        return Money(self.amount + other.amount, self.currency)

    def __radd__(self, other: object) -> Money:
        # Lets sum(monies) start from its default 0.
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        return NotImplemented

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "subtract")
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def _other_amount(self, other: object) -> Decimal:
        if not isinstance(other, Money):
            raise TypeError(f"Cannot compare {self} with {type(other).__name__}.")
        self._same_currency(other, "compare")
        return other.amount

    def __lt__(self, other: object) -> bool:
        return self.amount < self._other_amount(other)

    def __le__(self, other: object) -> bool:
        return self.amount <= self._other_amount(other)

    def __gt__(self, other: object) -> bool:
        return self.amount > self._other_amount(other)

    def __ge__(self, other: object) -> bool:
        return self.amount >= self._other_amount(other)

    def __str__(self) -> str:
        return f"{quantize(self.amount, self.currency)} {self.currency}"


def allocate(*, total: Decimal | int | str, weights: Sequence[Decimal | int | str], currency: str) -> list[Decimal]:
    """Split ``total`` over ``weights`` into quantized parts that sum exactly to it.

    ``total`` is quantized first. Each part but the last is its proportional share
    rounded half-up; the last part takes the remainder (Saleor style), so rounding
    drift never leaks out of the split. Weights must be non-negative; if they sum to
    zero the total is split equally.

    With many parts and a tiny last weight, half-up rounding of the earlier parts
    could overshoot the total and leave the last part with the opposite sign (e.g.
    0.01 over weights 1, 1, 0). Only then the parts are taken as differences of the
    rounded running totals instead, which keeps every part within one minor unit of
    its share and of the same sign as the total.
    """
    total_q = quantize(total, currency)
    ws = [to_decimal(w, "weight") for w in weights]
    if not ws:
        raise ValueError("allocate needs at least one weight to split the total over.")
    if any(w < 0 for w in ws):
        raise ValueError(f"Weights must not be negative, got {[str(w) for w in ws]}.")
    weight_sum = sum(ws, Decimal(0))
    if weight_sum == 0:
        ws = [Decimal(1)] * len(ws)
        weight_sum = Decimal(len(ws))

    head = [quantize(total_q * w / weight_sum, currency) for w in ws[:-1]]
    last = total_q - sum(head, Decimal(0))
    if last * total_q >= 0:
        return [*head, last]

    parts: list[Decimal] = []
    running = Decimal(0)
    previous_edge = quantize(0, currency)
    for index, weight in enumerate(ws):
        running += weight
        is_last = index == len(ws) - 1
        edge = total_q if is_last else quantize(total_q * running / weight_sum, currency)
        parts.append(edge - previous_edge)
        previous_edge = edge
    return parts


def split_evenly(*, total: Decimal | int | str, n: int, currency: str) -> list[Decimal]:
    """Split ``total`` into ``n`` quantized parts that sum exactly to it (remainder last)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    return allocate(total=total, weights=[Decimal(1)] * n, currency=currency)


def format_money(amount: Decimal | int | str, currency: str) -> str:
    """Display form with thousands separators and the currency's digits: '1,700.00'."""
    digits = minor_units(currency)
    return f"{quantize(amount, currency):,.{digits}f}"
