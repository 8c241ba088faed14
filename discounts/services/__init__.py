"""Use cases that change discounts, credits and overrides; one transaction each."""
