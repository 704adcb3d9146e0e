"""The hosts' *.nix files, indexed in chunks into config_files."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from macha.context.memory.errors import guard, one_line
from macha.context.memory.metadata import Scalar
from macha.context.memory.store import MemoryStore

MAX_CONFIG_FILE_BYTES = 2_000_000


class IndexReport(BaseModel):
    files: int = 0
    chunks: int = 0
    upserted: int = 0
    unchanged: int = 0
    removed: int = 0
    notes: list[str] = Field(default_factory=list)


class ConfigIndex(MemoryStore):
    """The hosts' NixOS configuration in `config_files`."""

    def index_config_files(self, paths: Sequence[str | Path], hostname: str,
                           chunk_chars: int | None = None) -> IndexReport:
        """Index the *.nix files under paths (directories, or files given by name) as the host's whole set.

        Chunks on line boundaries; only changed chunks are embedded again; chunks of files that vanished or
        shrank are removed (those of unreadable files are kept). One bad file or path is a note, never an error.
        """
        report = IndexReport()
        size = chunk_chars or self.chunk_chars
        wanted: dict[str, tuple[str, dict[str, Scalar]]] = {}
        unreadable: set[str] = set()
        for file in _nix_files(paths, report.notes):
            try:
                st = os.stat(file)
                # A FIFO or device named *.nix would block or never end.
                if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_CONFIG_FILE_BYTES:
                    what = f"over {MAX_CONFIG_FILE_BYTES} bytes" if stat.S_ISREG(st.st_mode) else "not a regular file"
                    report.notes.append(f"{file}: skipped, {what}")
                    unreadable.add(file)
                    continue
                raw = Path(file).read_bytes()
            except OSError as exc:
                report.notes.append(f"{file}: unreadable ({exc.strerror or one_line(exc)})")
                unreadable.add(file)
                continue
            report.files += 1
            for n, (first, last, body) in enumerate(_chunks(raw.decode("utf-8", errors="replace"), size)):
                doc = f"# {file} lines {first}-{last}\n{body}"
                wanted[f"{hostname}:{file}#{n}"] = (doc, {
                    "hostname": hostname, "path": file, "chunk": n, "start_line": first, "end_line": last,
                    "sha": hashlib.sha256(doc.encode()).hexdigest()[:16],
                })
        report.chunks = len(wanted)
        with self._collection("config_files", write=False) as col, guard("reading config_files"):
            have = col.get(where={"hostname": hostname}, include=["metadatas"])
        old = {i: (m or {}) for i, m in zip(have["ids"], have["metadatas"])}
        changed = [i for i, (_, meta) in wanted.items() if old.get(i, {}).get("sha") != meta["sha"]]
        report.unchanged = len(wanted) - len(changed)
        if changed:
            self._upsert("config_files", changed, [wanted[i][0] for i in changed], [wanted[i][1] for i in changed])
        report.upserted = len(changed)
        gone = [i for i, m in old.items() if i not in wanted and m.get("path") not in unreadable]
        if gone:
            with self._collection("config_files", write=True) as col, guard("removing old config chunks"):
                col.delete(ids=gone)
        report.removed = len(gone)
        return report


def _nix_files(paths: Sequence[str | Path], notes: list[str]) -> Iterator[str]:
    seen: set[str] = set()
    for given in paths:
        root = Path(given)
        if root.is_file():
            found = [str(root)]
        elif root.is_dir():
            found = []

            def note(err: OSError) -> None:
                notes.append(f"{err.filename}: unreadable directory ({err.strerror})")

            for dirpath, dirnames, filenames in os.walk(root, onerror=note):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))  # .git and the like
                found += [os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".nix")]
        else:
            notes.append(f"{root}: no such file or directory")
            continue
        for f in found:
            if f not in seen:
                seen.add(f)
                yield f


def _chunks(text: str, size: int) -> Iterator[tuple[int, int, str]]:
    """(first line, last line, text) pieces of about size characters, cut between lines."""
    lines = text.splitlines()
    start, buf, length = 1, [], 0
    for number, line in enumerate(lines, 1):
        if buf and length + len(line) + 1 > size:
            yield start, number - 1, "\n".join(buf)
            start, buf, length = number, [], 0
        buf.append(line)
        length += len(line) + 1
    if buf and any(b.strip() for b in buf):
        yield start, len(lines), "\n".join(buf)
