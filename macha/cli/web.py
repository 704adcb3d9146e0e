"""macha-web: the dashboard (FastAPI on uvicorn) on webInterface.listenAddress:port.

`macha-ai` starts it as one of its children when webInterface.enable; it also runs alone against a shared database
and broker (the fleet's central node).
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any

from macha.cli.common import parser, run, settings_from, setup_logging
from macha.config import Settings, is_loopback
from macha.core.errors import ConfigError, MachaError

log = logging.getLogger("macha.web")


def main(argv: list[str] | None = None) -> None:
    p = parser("macha-web", "Serve the Macha dashboard (login: the token in stateDir/secrets/web-token, or PAM).")
    p.add_argument("--listen", help="address to listen on (default: webInterface.listenAddress, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: webInterface.port, 8080)")
    p.add_argument("--database", help="database URL (default: SQLite under state_dir)")
    p.add_argument("--broker", help="Redis URL of the broker (default: the embedded Redis under state_dir)")
    p.add_argument("--state-dir", help="state directory (default: ~/.local/state/macha)")
    args = p.parse_args(argv)
    run("macha-web", lambda: _main(args))


def _main(args: Any) -> int:
    settings = settings_from(args, database_url=args.database, broker_url=args.broker, state_dir=args.state_dir)
    setup_logging(args.verbose, settings.log_level)
    config, sock = prepare(settings, args.listen, args.port)
    import uvicorn

    uvicorn.Server(config).run(sockets=[sock])
    return 0


def prepare(settings: Settings, listen: str | None = None, port: int | None = None) -> tuple[Any, socket.socket]:
    """The dashboard's uvicorn configuration and its bound socket (macha-web, and macha.cli.interfaces beside the
    MCP server). A port in use or a missing TLS file is one line."""
    import uvicorn

    from macha.store.db import Store
    from macha.web.app import create_app

    web = settings.web_interface
    if listen:
        web.listen_address = listen
    if port is not None:
        if not 1 <= port <= 65535:
            raise ConfigError(f"--port {port} is not a port (1 to 65535)")
        web.port = port
    if not is_loopback(web.listen_address) and web.tls_cert is None:
        log.warning("the dashboard listens on %s without TLS: logins and session cookies cross the network in "
                    "clear text; set webInterface.tlsCert and tlsKey, or put it behind a TLS proxy",
                    web.listen_address)
    for path in (web.tls_cert, web.tls_key):
        if path is not None and not path.is_file():
            raise ConfigError(f"the TLS file {path} does not exist")
    app = create_app(settings, store=Store(settings.effective_database_url))
    # Bind first, so that a port in use is one line, not a server that logs a traceback and exits.
    family = socket.AF_INET6 if ":" in web.listen_address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((web.listen_address, web.port))
    except OSError as exc:
        sock.close()
        why = "it is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise MachaError(f"cannot listen on {web.listen_address}:{web.port}: {why}") from None
    config = uvicorn.Config(app, log_level=settings.log_level.lower(), access_log=False, proxy_headers=False,
                            ssl_certfile=str(web.tls_cert) if web.tls_cert else None,
                            ssl_keyfile=str(web.tls_key) if web.tls_key else None, ws="websockets-sansio")
    log.info("dashboard on %s://%s:%d", "https" if web.tls_cert else "http", web.listen_address, web.port)
    return config, sock


if __name__ == "__main__":
    main()
