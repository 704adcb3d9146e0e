"""The dashboard and the MCP server as `macha-ai` runs them: one child process serving both ports, started again
when it dies, and ended cleanly with macha-ai."""

from __future__ import annotations

import os

import httpx
import psutil
import pytest
from helpers.processes import free_port, macha_env, wait_for

pytestmark = pytest.mark.timeout(240)


def test_one_process_serves_the_dashboard_and_the_mcp_server(state_dir, journal_dir, macha_ai) -> None:
    web_port, mcp_port = free_port(), free_port()
    env = macha_env(state_dir, MACHA_HOSTNAME=f"t{os.getpid()}", MACHA_JOURNAL_DIRECTORY=str(journal_dir),
                    MACHA_LLM__BACKEND="none", MACHA_WEB_INTERFACE__ENABLE="true",
                    MACHA_WEB_INTERFACE__PORT=str(web_port), MACHA_MCP_SERVER__ENABLE="true",
                    MACHA_MCP_SERVER__PORT=str(mcp_port))
    ai = macha_ai(env, "--no-follow")
    ai.wait_ready()

    def answering() -> bool:
        try:
            login = httpx.get(f"http://127.0.0.1:{web_port}/login", timeout=5)
            mcp = httpx.post(f"http://127.0.0.1:{mcp_port}/mcp", json={}, timeout=5,
                             headers={"Host": f"127.0.0.1:{mcp_port}"})
        except httpx.TransportError:
            return False
        # The dashboard's login page, and the MCP server refusing a request without its token.
        return login.status_code == 200 and "token" in login.text.lower() and mcp.status_code == 401

    wait_for(answering, 60, "the dashboard and the MCP server to answer")
    supervisor = psutil.Process(ai.proc.pid)
    [first] = [p for p in supervisor.children() if "macha.cli.interfaces" in " ".join(p.cmdline())]
    # Both ports are that one process's (no other Python process of macha-ai listens).
    ports = {c.laddr.port for c in first.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
    assert {web_port, mcp_port} <= ports
    assert not [p for p in supervisor.children() if "macha.cli.web" in " ".join(p.cmdline())
                or "macha.mcp" in " ".join(p.cmdline())]

    first.kill()
    wait_for(lambda: "the dashboard and the MCP server stopped" in ai.log.read_text(), 30,
             "macha-ai to see the interfaces end")
    wait_for(answering, 60, "both to answer again")
    [again] = [p for p in supervisor.children() if "macha.cli.interfaces" in " ".join(p.cmdline())]
    assert again.pid != first.pid
    assert ai.stop() == 0
    wait_for(lambda: not (again.is_running() and again.status() != psutil.STATUS_ZOMBIE), 15,
             "the interfaces to end with macha-ai")
