"""Run the emulator on loopback (``ssp-revenue emulator serve``)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging

from werkzeug.serving import make_server

from ssp_emulator.app import create_app
from ssp_emulator.state import EmulatorState
from ssp_revenue.core.clock import parse_instant

LOOPBACK = "127.0.0.1"


def serve(port: int, seed: int = 1, now: dt.datetime | None = None,
          s3_endpoint: str | None = None) -> None:
    """Serve until killed. Binds to loopback only: the emulator holds demo credentials."""
    app = create_app(EmulatorState(seed=seed, now=now, s3_endpoint=s3_endpoint))
    server = make_server(LOOPBACK, port, app, threaded=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    print(f"ssp emulator on http://{LOOPBACK}:{server.server_port}", flush=True)
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ssp-revenue emulator serve")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--now", type=parse_instant, default=None)
    parser.add_argument("--s3-endpoint", default=None,
                        help="S3 endpoint that file-drop SSPs deliver to (off when absent)")
    args = parser.parse_args(argv)
    serve(args.port, args.seed, args.now, args.s3_endpoint)


if __name__ == "__main__":
    main()
