"""Renewal use cases, one function each (raise, escalate, decide, renew, auto-renew, expire, digest)."""
