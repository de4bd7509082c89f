"""Structured logs: one JSON object a line, carrying the id of the request being served.

Every request gets an id (the caller's X-Request-ID if it is sane, else a fresh one),
echoed in the response, so a store's support team can quote it and operators can find
every line it caused. Logs never carry query strings, bodies or API keys: uvicorn's
access log is off, and the server's own messages name routes, not URLs.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid

import orjson
from starlette.types import Scope

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
HEADER = b"x-request-id"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def configure_logging(style: str) -> None:
    """`json` for machines (the default), `text` for a developer's terminal."""
    handler = logging.StreamHandler()
    if style == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # CPU-feature probing noise


def request_id_of(scope: Scope) -> str:
    """The caller's X-Request-ID if it is sane (it goes into logs), else a fresh one."""
    given = dict(scope["headers"]).get(HEADER, b"").decode("latin-1")
    return given if _SANE_ID.match(given) else uuid.uuid4().hex
