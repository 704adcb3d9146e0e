"""Samples of this host's health: CPU, memory, swap, each mounted file system's space and inodes, load per core,
and pressure stall information (/proc/pressure) where the kernel has it. One job: read, no judging."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import psutil

PRESSURE = Path("/proc/pressure")
#: File systems that are not storage an operator fills up.
PSEUDO_FS = {"tmpfs", "devtmpfs", "squashfs", "overlay", "proc", "sysfs", "cgroup", "cgroup2", "ramfs", "nsfs"}


@dataclass(frozen=True)
class MetricSample:
    name: str
    value: float
    unit: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Identifies the series: the name plus its labels (e.g. disk_percent{mount=/var})."""
        if not self.labels:
            return self.name
        return self.name + "{" + ",".join(f"{k}={v}" for k, v in sorted(self.labels.items())) + "}"


def _pressure(path: Path) -> list[MetricSample]:
    out = []
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        kind, *fields = line.split()
        values = dict(f.split("=", 1) for f in fields if "=" in f)
        if "avg10" in values:
            out.append(MetricSample(f"psi_{path.name}_{kind}_avg10", float(values["avg10"]), "%"))
    return out


def sample(pressure_dir: Path = PRESSURE) -> list[MetricSample]:
    cores = psutil.cpu_count() or 1
    samples = [
        MetricSample("cpu_percent", psutil.cpu_percent(interval=0.2), "%"),
        MetricSample("memory_percent", psutil.virtual_memory().percent, "%"),
        MetricSample("swap_percent", psutil.swap_memory().percent, "%"),
        MetricSample("load_per_core", round(os.getloadavg()[0] / cores, 3), "load"),
    ]
    seen: set[str] = set()
    for part in psutil.disk_partitions(all=False):
        if part.fstype in PSEUDO_FS or part.mountpoint in seen:
            continue
        seen.add(part.mountpoint)
        try:
            usage = psutil.disk_usage(part.mountpoint)
            st = os.statvfs(part.mountpoint)
        except OSError:
            continue
        labels = {"mount": part.mountpoint}
        samples.append(MetricSample("disk_percent", usage.percent, "%", labels))
        if st.f_files:
            used = st.f_files - st.f_ffree
            samples.append(MetricSample("inode_percent", round(100 * used / st.f_files, 2), "%", labels))
    if pressure_dir.is_dir():
        for name in ("cpu", "memory", "io"):
            samples += _pressure(pressure_dir / name)
    return samples
