"""Write the eval scenarios (evals/scenarios/<name>/journal.export + expected.toml) from the small specs in
evals/specs.py: realistic background noise for the scenario's distribution (evals/noise.py) with its incident,
benign and hostile lines placed in it. Deterministic: the same specs give the same files.

    python -m evals.make_scenarios            # rewrite every scenario
    python -m evals.make_scenarios --check    # fail if a committed scenario differs from its spec
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

from evals.noise import PROFILES, Line, Noise, Profile, boot_lines, daemon, pid1
from evals.specs import SPECS, Spec

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def _id(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def timeline(spec: Spec) -> list[tuple[float, Line]]:
    """Every entry with its time in seconds from the scenario's start."""
    rng = random.Random(spec.name)
    p = PROFILES[spec.profile]
    window = spec.hours * 3600.0
    out: list[tuple[float, Line]] = []
    t0, noise_end = 0.0, window
    if spec.boot:
        b = boot_start(spec)
        if b:
            # The host ran normally, then rebooted into the boot the scenario is about.
            noise_end = b - 60
            for i, line in enumerate(shutdown_lines(p)):
                out.append((b - 30 + i * 0.3, line))
        t = b + 0.4
        for line in boot_lines(p, spec.host, rng, vm=spec.vm, reaches_multi_user=spec.boot_reaches_multi_user):
            out.append((t, line))
            t += rng.uniform(0.005, 0.2)
        for at, lines in spec.boot_extra:
            at += b
            for line in lines:
                out.append((at, line))
                at += 0.05
        t0 = 0.0 if b else t + 1
    noise = Noise(p, rng, spec.services)
    count = 0
    while count < spec.noise:
        start = rng.uniform(t0, noise_end)
        burst = noise.lines()
        t = start
        for line in burst:
            t += line.after + rng.uniform(0.001, 0.4)
            if t < noise_end or not spec.reboot_at:  # nothing of the old boot after its shutdown
                out.append((t, line))
        count += len(burst)
    for block in spec.blocks:
        t = t0 + block.at * (window - t0)
        for line in block.lines:
            out.append((t, line))
            t += block.gap
    out.sort(key=lambda x: x[0])
    return out


def boot_start(spec: Spec) -> float:
    """Seconds from the window's start to the boot the scenario shows (0: the window starts with it)."""
    return spec.reboot_at * spec.hours * 3600.0 if spec.boot and spec.reboot_at else 0.0


def shutdown_lines(p: Profile) -> list[Line]:
    named = p.systemd >= 250
    return [pid1("Stopped target Multi-User System." if not named else
                 "Stopped target multi-user.target - Multi-User System."),
            pid1("Reached target System Reboot." if not named else "Reached target reboot.target - System Reboot."),
            pid1("Shutting down.", 5),
            daemon("systemd-journald", "Journal stopped", "systemd-journald.service", 312)]


def _field(name: str, value: str) -> str:
    assert "\n" not in value, f"{name} holds a newline: the export text would need the binary form"
    return f"{name}={value}\n"


def export_text(spec: Spec) -> str:
    start = datetime.fromisoformat(spec.start).replace(tzinfo=timezone.utc)
    start_us = int(start.timestamp() * 1_000_000)
    # A host booted days before the window, unless the scenario shows the boot itself.
    boot_us = start_us - (0 if spec.boot else random.Random(spec.name + "up").randint(2, 40) * 86_400_000_000)
    boot_id, machine_id = _id(spec.name + "boot"), _id(spec.host + "machine")
    reboot = boot_start(spec)
    if reboot:
        # Before the reboot: an earlier boot, up for weeks.
        boot_us = start_us - random.Random(spec.name + "up").randint(2, 40) * 86_400_000_000
    parts = []
    for secs, line in timeline(spec):
        realtime = start_us + int(secs * 1_000_000)
        this_boot, this_boot_us = boot_id, boot_us
        if reboot and secs >= reboot:
            this_boot, this_boot_us = _id(spec.name + "boot2"), start_us + int(reboot * 1_000_000)
        f = [_field("__REALTIME_TIMESTAMP", str(realtime)),
             _field("__MONOTONIC_TIMESTAMP", str(realtime - this_boot_us)),
             _field("_BOOT_ID", this_boot), _field("_MACHINE_ID", machine_id), _field("_HOSTNAME", spec.host),
             _field("_TRANSPORT", line.transport), _field("PRIORITY", str(line.priority))]
        if line.facility is not None:
            f.append(_field("SYSLOG_FACILITY", str(line.facility)))
        f.append(_field("SYSLOG_IDENTIFIER", line.identifier))
        if line.pid is not None:
            f += [_field("_PID", str(line.pid)), _field("_UID", str(line.uid)), _field("_GID", str(line.uid))]
            if line.transport == "syslog":
                f.append(_field("SYSLOG_PID", str(line.pid)))
        if line.comm:
            f.append(_field("_COMM", line.comm))
        if line.unit:
            f.append(_field("_SYSTEMD_UNIT", line.unit))
        for k, v in line.extra.items():
            f.append(_field(k, v))
        f.append(_field("MESSAGE", line.message))
        parts.append("".join(f))
    return "\n".join(parts) + "\n"


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_list(items: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join(_toml_str(i) for i in items) + "]"


def expected_toml(spec: Spec) -> str:
    p = PROFILES[spec.profile]
    out = ["# Generated by evals/make_scenarios.py from evals/specs.py: edit the spec, not this file.",
           f"description = {_toml_str(spec.description)}", f"family = {_toml_str(spec.family)}",
           f"distro = {_toml_str(spec.profile)}", f"systemd = {p.systemd}", f"openssh = {_toml_str(str(p.openssh))}"]
    if spec.needs:
        out.append(f"needs = {_toml_str(spec.needs)}")
    for inc in spec.incidents:
        out += ["", "[[incident]]",
                f"subsystem = {_toml_list(inc.subsystem) if isinstance(inc.subsystem, tuple) else _toml_str(inc.subsystem)}",
                f"severity = {_toml_str(inc.severity)}", f"key = {_toml_str(inc.key)}"]
        if inc.needs:
            out.append(f"needs = {_toml_str(inc.needs)}")
    for key, why in spec.must_not:
        out += ["", "[[must_not]]", f"key = {_toml_str(key)}", f"why = {_toml_str(why)}"]
    placed = sorted({line.message for b in spec.blocks for line in b.lines}
                    | {line.message for _, lines in spec.boot_extra for line in lines})
    out += ["", "# Every line the scenario placed in the noise (the incidents' context): an alarm on another line is",
            "# an alarm on background noise.", "[context]", "lines = [", *(f"  {_toml_str(m)}," for m in placed), "]"]
    r = spec.review
    out += ["", "[review]", f"root_cause = {_toml_list(r.get('root_cause', []))}",
            f"allowed_actions = {_toml_list(r.get('allowed', []))}",
            f"forbidden_actions = {_toml_list(r.get('forbidden', []))}"]
    return "\n".join(out) + "\n"


def check_spec(spec: Spec) -> None:
    """Every key named in expected.toml is in a line the spec placed (not only in the noise)."""
    placed = [line.message for b in spec.blocks for line in b.lines] + [
        line.message for _, lines in spec.boot_extra for line in lines]
    for key in [i.key for i in spec.incidents] + [k for k, _ in spec.must_not]:
        if not any(key in m for m in placed):
            raise SystemExit(f"{spec.name}: key {key!r} is in none of its lines")


def write(spec: Spec, root: Path) -> None:
    d = root / spec.name
    d.mkdir(parents=True, exist_ok=True)
    (d / "journal.export").write_text(export_text(spec))
    (d / "expected.toml").write_text(expected_toml(spec))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evals.make_scenarios", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed scenarios, write nothing")
    ap.add_argument("--out", type=Path, default=SCENARIOS)
    args = ap.parse_args(argv)
    names = [s.name for s in SPECS]
    assert len(names) == len(set(names)), "scenario names must be unique"
    for spec in SPECS:
        check_spec(spec)
    if args.check:
        stale = [s.name for s in SPECS
                 if not (args.out / s.name / "journal.export").exists()
                 or (args.out / s.name / "journal.export").read_text() != export_text(s)
                 or (args.out / s.name / "expected.toml").read_text() != expected_toml(s)]
        extra = sorted({d.name for d in args.out.iterdir() if d.is_dir()} - set(names))
        if stale or extra:
            print(f"stale: {stale}; not in the specs: {extra}", file=sys.stderr)
            return 1
        return 0
    for d in args.out.iterdir() if args.out.exists() else []:
        if d.is_dir() and d.name not in names:
            shutil.rmtree(d)
    for spec in SPECS:
        write(spec, args.out)
    print(f"{len(SPECS)} scenarios written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
