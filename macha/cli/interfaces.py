"""The dashboard and the MCP server in one process: ``python -m macha.cli.interfaces [--no-web] [--no-mcp]``.

`macha-ai` starts this as its one interface child rather than a Python process per server: each would hold its own
copy of the store, the settings and the read layer (about 90 MB apiece). Each server keeps its own port, socket,
app and lifespan (macha.cli.web.prepare, macha.mcp.main.prepare_http); they share one event loop. `macha-web` and
`macha-mcp` still run either alone (a fleet's central node, or a desktop client's stdio server).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from typing import Any

from macha.cli.common import parser, run, settings_from, setup_logging
from macha.core.errors import MachaError


def main(argv: list[str] | None = None) -> None:
    p = parser("macha-interfaces", "Serve the dashboard and the MCP server from one process.")
    p.add_argument("--no-web", action="store_true", help="do not serve the dashboard")
    p.add_argument("--no-mcp", action="store_true", help="do not serve the MCP server")
    args = p.parse_args(argv)
    run("macha-interfaces", lambda: _main(args))


def _main(args: Any) -> int:
    import uvicorn

    settings = settings_from(args)
    setup_logging(args.verbose, settings.log_level)
    served: list[tuple[Any, Any]] = []
    try:
        if not args.no_web:
            from macha.cli.web import prepare

            served.append(prepare(settings))
        if not args.no_mcp:
            from macha.mcp.main import prepare_http

            served.append(prepare_http(settings))
    except BaseException:
        for _config, sock in served:
            sock.close()
        raise
    if not served:
        raise MachaError("neither the dashboard nor the MCP server is asked for")

    class Server(uvicorn.Server):
        # The signals are this process's, not one server's: each would put its own handler over the other's.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    servers = [(Server(config), sock) for config, sock in served]

    def stop(_signum: int, _frame: Any) -> None:
        for server, _sock in servers:
            if server.should_exit:
                server.force_exit = True  # a second signal: do not wait for open connections
            server.should_exit = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    async def serve() -> None:
        tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in servers]
        # One server ending (it failed to start, or a signal) ends the other: macha-ai starts both again.
        done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for server, _sock in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            task.result()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    main()
