"""Serve any ASGI app the way `python -m server` serves Encore, so floors and Encore share
the server arrangement: uvicorn with uvloop and httptools, no access log, and with more
than one worker each listening on the port itself (server/workers.py).

    .venv/bin/python -m benchmarks.serve_app benchmarks.ideal_app:app --port 8001 --workers 2
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from server.workers import Supervisor, can_share_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("app", help="module:attribute")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--app-dir", default="", help="a folder to import the app from")
    args = parser.parse_args()
    if args.app_dir:
        sys.path.insert(0, args.app_dir)  # spawned workers start with the same sys.path
    config = uvicorn.Config(
        args.app, host="127.0.0.1", port=args.port, workers=args.workers, loop="uvloop",
        http="httptools", access_log=False, log_level="warning",
    )  # fmt: skip
    if args.workers > 1 and can_share_port():
        sys.exit(Supervisor(config, args.workers, "text").run())
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
