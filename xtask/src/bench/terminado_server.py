"""terminado as a bench target: one tornado process serving each bench program on its own path.

Usage: python terminado_server.py PROGRAMS_JSON CWD

PROGRAMS_JSON maps a path name to an argument vector, e.g. {"cat": ["cat"]}. Each path
/NAME is a terminado TermSocket with a UniqueTermManager: every WebSocket gets a fresh
process on a fresh PTY, as in Jupyter's terminals. A name starting with "named-" is served
instead at /NAME/TERM by a NamedTermManager: the terminal TERM outlives its WebSockets, and
a WebSocket to the same TERM reattaches (the reattach figure). Listens on a free loopback port and
prints "listening on PORT" once it accepts connections. Written by `cargo xtask bench`
(xtask/src/bench/terminado_server.py) into its scratch folder.
"""

import asyncio
import json
import sys

import tornado.httpserver
import tornado.netutil
import tornado.web
from terminado import NamedTermManager, TermSocket, UniqueTermManager


async def main() -> None:
    programs = json.loads(sys.argv[1])
    cwd = sys.argv[2]
    handlers = []
    for name, argv in programs.items():
        if name.startswith("named-"):
            manager = NamedTermManager(shell_command=argv, term_settings={"cwd": cwd})
            handlers.append((rf"/{name}/(\w+)/?", TermSocket, {"term_manager": manager}))
        else:
            manager = UniqueTermManager(shell_command=argv, term_settings={"cwd": cwd})
            handlers.append((f"/{name}", TermSocket, {"term_manager": manager}))
    application = tornado.web.Application(handlers)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(application)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    print(f"listening on {port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
