"""macha-mcp: the MCP server. Streamable HTTP at http://<mcpServer.listenAddress>:<mcpServer.port>/mcp with a bearer
token and a Host/Origin allowlist (macha-ai starts it when mcpServer.enable), or ``--stdio`` for a desktop client
that starts it itself (no token: whoever can start the process already has the user's rights)."""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

from macha.config import Settings, load_settings
from macha.core.entry import OneLineParser, operator_name, run
from macha.core.errors import MachaError

log = logging.getLogger("macha.mcp")
PATH = "/mcp"


def main(argv: list[str] | None = None) -> None:
    p = OneLineParser(prog="macha-mcp", description="Serve Macha's context and tools to MCP clients.")
    p.add_argument("--config", type=Path, help="TOML settings file (default: $MACHA_CONFIG)")
    p.add_argument("-v", "--verbose", action="store_true", help="log requests to stderr")
    p.add_argument("--stdio", action="store_true", help="talk MCP over stdin/stdout (for a client that starts it)")
    p.add_argument("--listen", help="address to bind (default: mcpServer.listenAddress)")
    p.add_argument("--port", type=int, help="port (default: mcpServer.port)")
    p.add_argument("--show-token", action="store_true",
                   help="print the bearer token a client needs (creating the token file if needed) and exit")
    args = p.parse_args(argv)
    run("macha-mcp", lambda: _main(args))


def _settings(args: Any) -> Settings:
    if args.config is not None:
        os.environ["MACHA_CONFIG"] = str(args.config.resolve())
    overrides: dict[str, Any] = {}
    settings = load_settings()
    if args.listen is not None or args.port is not None:
        mcp = settings.mcp_server.model_dump()
        if args.listen is not None:
            mcp["listen_address"] = args.listen
        if args.port is not None:
            mcp["port"] = args.port
        overrides["mcp_server"] = mcp
        settings = load_settings(**overrides)
    return settings


def _main(args: Any) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    settings = _settings(args)
    from macha.mcp import auth

    if args.show_token:
        print(auth.read_token(auth.ensure_token_file(settings)))
        return 0
    if args.stdio:
        return _stdio(settings)
    return _http(settings)


def _server(settings: Settings, client: str) -> Any:
    from macha.mcp.dispatch import celery_dispatch
    from macha.mcp.server import build_server, write_tools_enabled
    from macha.store.db import Store

    store = Store(settings.effective_database_url)  # migrates, or says plainly why it cannot
    why = write_tools_enabled(settings)
    log.info("write tools: %s", "registered" if why is None else f"not registered ({why})")
    return build_server(settings, store, client=client, dispatch=celery_dispatch(settings))


def _stdio(settings: Settings) -> int:
    server = _server(settings, f"stdio-{operator_name()}")
    server.run("stdio")
    return 0


def _bind(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise MachaError(f"cannot listen on {address}:{port}: {exc.strerror or exc} (mcpServer.listenAddress, "
                         "mcpServer.port)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def http_app(settings: Settings, server: Any) -> Any:
    """The MCP app behind the guard: Host and Origin allowlisted, then the bearer token, on every request."""
    from mcp.server.transport_security import TransportSecuritySettings

    from macha.mcp import auth

    tokens = auth.load_tokens(auth.ensure_token_file(settings))
    allowed = settings.mcp_server.allowed_hosts
    # The SDK's own DNS-rebinding check as well, with the same list (the guard answers first).
    security = TransportSecuritySettings(
        allowed_hosts=[h for name in allowed for h in (name, f"{name}:*")],
        allowed_origins=[f"{scheme}://{name}{port}" for name in allowed for scheme in ("http", "https")
                         for port in ("", ":*")],
    )
    app = server.streamable_http_app(streamable_http_path=PATH, transport_security=security,
                                     host=settings.mcp_server.listen_address)
    return auth.Guard(app, tokens, allowed)


def _http(settings: Settings) -> int:
    import uvicorn

    config, sock = prepare_http(settings)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def prepare_http(settings: Settings) -> tuple[Any, socket.socket]:
    """The MCP server's uvicorn configuration and its bound socket (macha-mcp, and macha.cli.interfaces beside
    the dashboard)."""
    import uvicorn

    from macha.mcp import auth

    cfg = settings.mcp_server
    auth.ensure_token_file(settings)  # before binding: a refused start opens no port
    server = _server(settings, "http")
    app = http_app(settings, server)
    sock = _bind(cfg.listen_address, cfg.port)
    host = cfg.listen_address if ":" not in cfg.listen_address else f"[{cfg.listen_address.strip('[]')}]"
    print(f"macha-mcp: serving MCP at http://{host}:{cfg.port}{PATH} (token in {settings.mcp_token_file})",
          file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level="info" if logging.getLogger().level <= logging.INFO else "warning",
                            access_log=False, lifespan="on", timeout_graceful_shutdown=5)
    return config, sock


if __name__ == "__main__":  # pragma: no cover
    main()
