"""A recording stand-in for `systemctl`, put first on PATH: it logs every argv it receives and answers `show`
from a table of units. No systemd runs as PID 1 in the test machines, so this is the edge we stand in for."""

from __future__ import annotations

import json
import sys
from pathlib import Path

SCRIPT = '''#!{python}
import json, os, sys, time
from pathlib import Path
here = Path(__file__).resolve().parent
units = json.loads((here / "units.json").read_text())
args = sys.argv[1:]
with open(here / "calls.jsonl", "a") as fh:
    fh.write(json.dumps(["systemctl", *args]) + "\\n")
    fh.flush()
    os.fsync(fh.fileno())
if args[:1] == ["show"]:
    names = args[args.index("--") + 1:] if "--" in args else args[-1:]
    blocks = []
    for name in names:
        u = units.get(name) or {{}}
        blocks.append("\\n".join([
            "Result=" + u.get("result", "success"), "NRestarts=" + str(u.get("restarts", 0)), "Id=" + name,
            "LoadState=" + u.get("load", "not-found"), "LoadError=", "ActiveState=" + u.get("active", "inactive"),
            "SubState=" + u.get("sub", "dead"), "FailureAction=" + u.get("failure_action", "none"),
            "SuccessAction=none", "StartLimitAction=none"]))
    print("\\n\\n".join(blocks))
    sys.exit(0)
if args[:1] == ["list-units"]:
    print(json.dumps([{{"unit": n, "load": u.get("load", "loaded"), "active": "failed", "sub": "failed",
                       "description": n}} for n, u in units.items() if u.get("active") == "failed"]))
    sys.exit(0)
if args[:1] in (["restart"], ["reset-failed"], ["start"], ["status"], ["reboot"]):
    unit = units.get(args[-1], {{}})
    time.sleep(unit.get("sleep", 0))
    print(unit.get("stdout", args[0] + " " + args[-1] + ": done"))
    sys.exit(unit.get("exit", 0))
print("stand-in systemctl: unsupported " + " ".join(args), file=sys.stderr)
sys.exit(1)
'''

DEFAULT_UNITS = {
    "nginx.service": {"load": "loaded"},
    "app@1.service": {"load": "loaded"},
    "postgresql.service": {"load": "loaded"},
    "redis.service": {"load": "loaded"},
    "sshd.service": {"load": "loaded"},
    "masked.service": {"load": "masked"},
    "slow.service": {"load": "loaded", "sleep": 30},
    "broken.service": {"load": "loaded", "exit": 1, "stdout": "Job for broken.service failed."},
}


class FakeSystemctl:
    def __init__(self, bindir: Path, units: dict | None = None):
        self.bindir = bindir
        bindir.mkdir(parents=True, exist_ok=True)
        script = bindir / "systemctl"
        script.write_text(SCRIPT.format(python=sys.executable))
        script.chmod(0o755)
        self.set_units(DEFAULT_UNITS if units is None else units)

    def set_units(self, units: dict) -> None:
        (self.bindir / "units.json").write_text(json.dumps(units))

    def calls(self, verb: str | None = None) -> list[list[str]]:
        log = self.bindir / "calls.jsonl"
        if not log.exists():
            return []
        calls = [json.loads(line) for line in log.read_text().splitlines() if line]
        return [c for c in calls if verb is None or c[1:2] == [verb]]
