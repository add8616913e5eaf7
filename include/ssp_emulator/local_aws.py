"""moto's S3 and Glue server as the local stack runs it: ``python -m ssp_emulator.local_aws -H HOST -p PORT``
takes moto_server's arguments.

moto's server (5.2) finds each request's backend by listing its own package folder
(``moto.backends.list_of_moto_modules``: an ``isdir`` for each of ~200 entries) on every
request: a fifth of its CPU in the backfill benchmark, a cost no S3 has. The folder does not
change while the server runs, so here it is listed once; everything else is moto's own server.
"""

from __future__ import annotations

import sys

from moto import backends, server


def main(argv: list[str] | None = None) -> None:
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]
    server.main(argv or sys.argv[1:])


if __name__ == "__main__":
    main()
