"""Use cases that change contracts data; one transaction each (STYLE.md)."""
