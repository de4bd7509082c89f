"""`python -m server [--host H] [--port P]`: serve the API.

With REDIS_URL unset, the embedded Valkey is started first (persisting under DATA_DIR)
and handed to the workers through REDIS_URL, then stopped when the server stops.
"""

from __future__ import annotations

import argparse
import logging
import os

import uvicorn

from server.logs import configure_logging
from settings import get_settings
from state.connection import redis_url_or_embedded


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=None, help="default: WORKERS or 1")
    args = parser.parse_args()
    settings = get_settings()
    configure_logging(settings.log_format)
    url, embedded = redis_url_or_embedded(settings)
    if embedded is not None:
        logging.getLogger("server").info(
            "embedded Valkey at %s (data in %s)", url, settings.data_dir
        )
    os.environ["REDIS_URL"] = url
    get_settings.cache_clear()
    try:
        uvicorn.run(
            "server.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers or settings.workers,
            loop="uvloop",
            http="httptools",
            access_log=False,  # access lines would carry visitor ids in query strings
            log_config=None,  # keep the handlers configured above
            timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        )
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
