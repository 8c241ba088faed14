"""Structured logging context: every record names the tenant and request it belongs to."""

from __future__ import annotations

import contextvars
import logging
import uuid

from django.db import connection

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.tenant = getattr(connection, "schema_name", "-") or "-"
        except Exception:  # logging must never fail because the database layer is not ready
            record.tenant = "-"
        record.request_id = request_id_var.get()
        return True


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rid = request.headers.get("X-Request-Id") or uuid.uuid4().hex[:16]
        token = request_id_var.set(rid)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-Id"] = rid
        return response
