"""Billing use cases (writes). One use case per function, one transaction each (STYLE.md)."""
