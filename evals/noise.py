"""Realistic background noise for the eval journals: what a quiet server writes in a few hours, in the wordings of
its distribution and systemd version (sshd sessions, cron, timers, DHCP, time sync, firewall drops, database
checkpoints, package tools...). Deterministic: every generator takes a seeded random.Random."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Profile:
    """One distribution release as its journal shows it."""

    name: str
    systemd: int
    kernel: str
    openssh: float
    ssh_unit: str
    cron: str  # "debian" (cron, CRON[pid]) | "cronie" (crond, CROND[pid]) | "none" (systemd timers only)
    net: str  # "networkd" | "nm" | "dhclient"
    timesync: str  # "timesyncd" | "chrony"
    firewall: str  # "ufw" | "firewalld" | "nixos" | "none"
    pam_new: bool  # linux-pam >= 1.4 writes "user root(uid=0)"
    timers: tuple[tuple[str, str], ...]
    extras: tuple[str, ...] = ()
    ntp_host: str = "pool.ntp.org"
    iface: str = "eth0"

    @property
    def sshd_session(self) -> str:
        # OpenSSH 9.8 split the per-connection work into sshd-session: its lines carry that identifier.
        return "sshd-session" if self.openssh >= 9.8 else "sshd"


DEB_TIMERS = (("apt-daily.service", "Daily apt download activities"),
              ("apt-daily-upgrade.service", "Daily apt upgrade and clean activities"),
              ("logrotate.service", "Rotate log files"), ("man-db.service", "Daily man-db regeneration"),
              ("systemd-tmpfiles-clean.service", "Cleanup of Temporary Directories"),
              ("phpsessionclean.service", "Clean php session files"))
RHEL_TIMERS = (("dnf-makecache.service", "dnf makecache"), ("logrotate.service", "Rotate log files"),
               ("systemd-tmpfiles-clean.service", "Cleanup of Temporary Directories"),
               ("sysstat-collect.service", "system activity accounting tool"),
               ("unbound-anchor.service", "update of the root trust anchor for DNSSEC validation in unbound"))
NIX_TIMERS = (("nix-gc.service", "Nix Garbage Collector"), ("nix-optimise.service", "Nix Store Optimiser"),
              ("logrotate.service", "Logrotate Service"),
              ("systemd-tmpfiles-clean.service", "Cleanup of Temporary Directories"),
              ("fstrim.service", "Discard unused blocks on filesystems from /etc/fstab"))
ARCH_TIMERS = (("shadow.service", "Verify integrity of password and group files"),
               ("man-db.service", "Daily man-db regeneration"), ("logrotate.service", "Rotate log files"),
               ("systemd-tmpfiles-clean.service", "Cleanup of Temporary Directories"),
               ("archlinux-keyring-wkd-sync.service", "Refresh existing keys of archlinux-keyring"),
               ("paccache.service", "Discard unused packages"))

PROFILES = {p.name: p for p in (
    Profile("ubuntu1804", 237, "4.15.0-213-generic", 7.6, "ssh.service", "debian", "networkd", "timesyncd", "ufw",
            False, DEB_TIMERS, ("snapd",), "ntp.ubuntu.com", "ens3"),
    Profile("ubuntu2004", 245, "5.4.0-182-generic", 8.2, "ssh.service", "debian", "networkd", "timesyncd", "ufw",
            False, DEB_TIMERS, ("snapd", "packagekit"), "ntp.ubuntu.com", "ens3"),
    Profile("debian10", 241, "4.19.0-26-amd64", 7.9, "ssh.service", "debian", "dhclient", "timesyncd", "none",
            False, DEB_TIMERS, (), "0.debian.pool.ntp.org", "eth0"),
    Profile("debian11", 247, "5.10.0-28-amd64", 8.4, "ssh.service", "debian", "dhclient", "timesyncd", "none",
            True, DEB_TIMERS, (), "0.debian.pool.ntp.org", "ens18"),
    Profile("rhel8", 239, "4.18.0-513.24.1.el8_9.x86_64", 8.0, "sshd.service", "cronie", "nm", "chrony",
            "firewalld", False, RHEL_TIMERS, (), "2.rhel.pool.ntp.org", "ens192"),
    Profile("ubuntu2204", 249, "5.15.0-105-generic", 8.9, "ssh.service", "debian", "networkd", "timesyncd", "ufw",
            True, DEB_TIMERS, ("snapd", "packagekit"), "ntp.ubuntu.com", "enp1s0"),
    Profile("debian12", 252, "6.1.0-21-amd64", 9.2, "ssh.service", "debian", "networkd", "timesyncd", "none",
            True, DEB_TIMERS, (), "0.debian.pool.ntp.org", "ens18"),
    Profile("rhel9", 252, "5.14.0-427.16.1.el9_4.x86_64", 8.7, "sshd.service", "cronie", "nm", "chrony",
            "firewalld", True, RHEL_TIMERS, (), "2.rhel.pool.ntp.org", "ens160"),
    Profile("ubuntu2404", 255, "6.8.0-31-generic", 9.6, "ssh.service", "debian", "networkd", "timesyncd", "ufw",
            True, DEB_TIMERS, ("snapd",), "ntp.ubuntu.com", "enp3s0"),
    Profile("nixos2405", 255, "6.6.32", 9.7, "sshd.service", "none", "networkd", "timesyncd", "nixos", True,
            NIX_TIMERS, ("nix",), "0.nixos.pool.ntp.org", "enp1s0"),
    Profile("nixos2411", 256, "6.6.63", 9.9, "sshd.service", "none", "networkd", "timesyncd", "nixos", True,
            NIX_TIMERS, ("nix",), "0.nixos.pool.ntp.org", "enp1s0"),
    Profile("arch", 256, "6.11.5-arch1-1", 9.9, "sshd.service", "none", "networkd", "timesyncd", "none", True,
            ARCH_TIMERS, (), "0.arch.pool.ntp.org", "enp5s0"),
)}


@dataclass
class Line:
    """One journal entry before it gets its time: the fields a real journald would attach."""

    message: str
    identifier: str
    priority: int = 6
    unit: str | None = None
    transport: str = "syslog"
    pid: int | None = None
    uid: int = 0
    comm: str | None = None
    facility: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
    #: extra seconds before this line within its burst (a session's work, a job's run time)
    after: float = 0.0


def kernel(msg: str, priority: int = 6) -> Line:
    return Line(msg, "kernel", priority, None, "kernel", None, 0, None, 0)


def pid1(msg: str, priority: int = 6) -> Line:
    """The system manager's own line (journald marks it with _PID=1; any other sender could only claim to be it)."""
    return Line(msg, "systemd", priority, "init.scope", "journal", 1, 0, "systemd", 3)


def daemon(ident: str, msg: str, unit: str | None, pid: int, priority: int = 6, uid: int = 0,
           transport: str = "syslog", facility: int = 3) -> Line:
    return Line(msg, ident, priority, unit, transport, pid, uid, ident[:15], facility)


def stdout(ident: str, msg: str, unit: str, pid: int, uid: int = 0, priority: int = 6) -> Line:
    """A service's stdout/stderr: journald stores it at the unit's level (info), whatever it says."""
    return Line(msg, ident, priority, unit, "stdout", pid, uid, ident[:15], 3)


# --- systemd wordings by version -----------------------------------------------------------------------------------
def sd_name(p: Profile, unit: str, desc: str) -> str:
    # systemd 250 started naming the unit before its description in job messages.
    return f"{unit} - {desc}" if p.systemd >= 250 else desc


def sd_starting(p: Profile, unit: str, desc: str) -> Line:
    return pid1(f"Starting {sd_name(p, unit, desc)}...")


def sd_started(p: Profile, unit: str, desc: str, oneshot: bool = False) -> Line:
    verb = "Finished" if oneshot and p.systemd >= 246 else "Started"
    return pid1(f"{verb} {sd_name(p, unit, desc)}.")


def sd_done(p: Profile, unit: str, rng: random.Random) -> list[Line]:
    out = []
    if 240 <= p.systemd < 249:
        out.append(pid1(f"{unit}: Succeeded."))
    elif p.systemd >= 249:
        out.append(pid1(f"{unit}: Deactivated successfully."))
    if p.systemd >= 247:
        cpu = f"{rng.uniform(0.01, 9.0):.3f}s" if p.systemd < 254 else f"{rng.randint(20, 4000)}ms"
        if p.systemd >= 256:
            out.append(pid1(f"{unit}: Consumed {cpu} CPU time, {rng.uniform(1, 90):.1f}M memory peak, "
                            "0B memory swap peak."))
        elif p.systemd >= 254:
            out.append(pid1(f"{unit}: Consumed {cpu} CPU time, {rng.uniform(1, 90):.1f}M memory peak."))
        else:
            out.append(pid1(f"{unit}: Consumed {cpu} CPU time."))
    return out


def sd_oneshot(p: Profile, unit: str, desc: str, rng: random.Random) -> list[Line]:
    done = sd_done(p, unit, rng)
    if done:
        done[0].after = rng.uniform(0.2, 40)
    # systemd says the unit deactivated, then that the job finished, then what it consumed.
    return [sd_starting(p, unit, desc), *done[:1], sd_started(p, unit, desc, oneshot=True), *done[1:]]


def pam_user(p: Profile, user: str, uid: int) -> str:
    return f"{user}(uid={uid})" if p.pam_new else user


# --- noise sources ---------------------------------------------------------------------------------------------------
ADMINS = [("alice", 1000), ("bob", 1001), ("deploy", 1002), ("ops", 1003)]
OFFICE_IPS = ["10.20.0.15", "10.20.0.23", "192.168.10.41", "172.16.4.9", "10.8.0.6"]
SCANNER_IPS = ["45.148.10.81", "218.92.0.112", "61.177.173.36", "165.232.84.19", "194.169.175.36",
               "141.98.11.11", "92.118.39.72", "183.81.169.238"]
SCANNER_USERS = ["admin", "test", "oracle", "ubuntu", "user", "guest", "git", "postgres", "ftpuser", "pi"]


class Noise:
    """One host's background: call lines() for a random burst of realistic entries."""

    def __init__(self, p: Profile, rng: random.Random, services: tuple[str, ...] = ()):
        self.p, self.rng, self.services = p, rng, services
        self.session = rng.randint(40, 900)
        self.next_pid = rng.randint(2000, 40000)
        self.fixed = {name: rng.randint(500, 1900) for name in
                      ("sshd", "cron", "networkd", "timesyncd", "chronyd", "nm", "postgres", "redis", "nix-daemon",
                       "snapd", "packagekitd", "dbus", "logind", "journald", "resolved", "dockerd", "mysqld",
                       "nginx", "dhclient", "rsyslogd", "smartd", "firewalld", "fail2ban")}

    def pid(self) -> int:
        self.next_pid += self.rng.randint(1, 60)
        return self.next_pid

    def sources(self) -> list:
        p = self.p
        src = [(self.ssh_session, 6), (self.ssh_scanner, 3), (self.timer, 5), (self.timesync, 2), (self.dhcp, 1),
               (self.sudo, 2), (self.dbus, 1), (self.resolved, 1)]
        if p.cron != "none":
            src.append((self.cron, 6))
        if p.firewall in ("ufw", "nixos", "firewalld"):
            src.append((self.firewall, 3))
        if "snapd" in p.extras:
            src.append((self.snapd, 1))
        if "packagekit" in p.extras:
            src.append((self.packagekit, 1))
        if "nix" in p.extras:
            src.append((self.nix_daemon, 3))
        for s in self.services:
            src.append((getattr(self, s), 4))
        return src

    def lines(self) -> list[Line]:
        funcs, weights = zip(*self.sources())
        return self.rng.choices(funcs, weights)[0]()

    # sshd: an admin logs in with a key, works, logs out
    def ssh_session(self) -> list[Line]:
        p, r = self.p, self.rng
        user, uid = r.choice(ADMINS)
        ip, port, pid = r.choice(OFFICE_IPS), r.randint(40000, 65000), self.pid()
        self.session += 1
        s = self.session
        key = r.choice(["ED25519 SHA256:Zq3sX0d6cE4pWk1mB8vT2yRnJ5aHf7uLgQoI9eKcD1M",
                        "RSA SHA256:p1Lh8fG2oV4sN6mQ0zX3cB5wE7rT9yU1iK3jH5gF7dA",
                        "ECDSA SHA256:4nY7tR2eW9qA1sD3fG5hJ7kL9zX1cV3bN5mQ7wE9rT2"])
        ident, unit = p.sshd_session, p.ssh_unit
        out = [daemon(ident, f"Accepted publickey for {user} from {ip} port {port} ssh2: {key}", unit, pid, 6, 0,
                      facility=10),
               daemon(ident, f"pam_unix(sshd:session): session opened for user {pam_user(p, user, uid)} by "
                             f"{'(uid=0)' if not p.pam_new else user + '(uid=0)'}", unit, pid, 6, facility=10),
               daemon("systemd-logind", f"New session {s} of user {user}.", "systemd-logind.service",
                      self.fixed["logind"]),
               pid1(f"Started {'session-%d.scope - ' % s if p.systemd >= 250 else ''}Session {s} of "
                    f"{'User' if p.systemd >= 240 else 'user'} {user}.")]
        end = len(out)
        if r.random() < 0.3:
            out.append(daemon(ident, f"Received disconnect from {ip} port {port}:11: disconnected by user", unit,
                              pid, facility=10))
        out += [daemon(ident, f"Disconnected from user {user} {ip} port {port}", unit, pid, facility=10),
                daemon(ident, f"pam_unix(sshd:session): session closed for user {user}", unit, pid, facility=10),
                daemon("systemd-logind", f"Session {s} logged out. Waiting for processes to exit.",
                       "systemd-logind.service", self.fixed["logind"])]
        out[end].after = r.uniform(20, 2400)  # the admin's work
        if p.systemd >= 240:
            out.append(pid1(f"session-{s}.scope: {'Deactivated successfully' if p.systemd >= 249 else 'Succeeded'}."))
        out.append(daemon("systemd-logind", f"Removed session {s}.", "systemd-logind.service", self.fixed["logind"]))
        return out

    # internet scanners knocking on sshd: the daily background of any public host (low, never more)
    def ssh_scanner(self) -> list[Line]:
        p, r = self.p, self.rng
        ip, port, pid, unit = r.choice(SCANNER_IPS), r.randint(30000, 65000), self.pid(), p.ssh_unit
        ident = p.sshd_session
        kind = r.random()
        if kind < 0.35:
            return [daemon(ident, f"Connection closed by {ip} port {port} [preauth]", unit, pid, facility=10)]
        if kind < 0.55:
            return [daemon(p.sshd_session if p.openssh < 9.8 else "sshd",
                           "error: kex_exchange_identification: Connection closed by remote host"
                           if p.openssh >= 8.2 else f"Did not receive identification string from {ip} port {port}",
                           unit, pid, 6 if p.openssh < 8.2 else 3, facility=10)]
        user = r.choice(SCANNER_USERS)
        inv = f"Invalid user {user} from {ip}" + (f" port {port}" if p.openssh >= 7.5 else "")
        out = [daemon(ident, inv, unit, pid, facility=10)]
        if p.openssh < 8.0:
            out.append(daemon(ident, f"input_userauth_request: invalid user {user} [preauth]", unit, pid, facility=10))
        out.append(daemon(ident, f"Connection closed by invalid user {user} {ip} port {port} [preauth]", unit, pid,
                          facility=10))
        return out

    def cron(self) -> list[Line]:
        p, r = self.p, self.rng
        pid = self.pid()
        if p.cron == "debian":
            ident, unit = "CRON", "cron.service"
            cmds = ["   cd / && run-parts --report /etc/cron.hourly", "[ -x /usr/lib/php/sessionclean ] && if [ ! -d "
                    "/run/systemd/system ]; then /usr/lib/php/sessionclean; fi",
                    "command -v debian-sa1 > /dev/null && debian-sa1 1 1", "/usr/local/bin/backup-db.sh >/dev/null 2>&1"]
        else:
            ident, unit = "CROND", "crond.service"
            cmds = ["run-parts /etc/cron.hourly", "/usr/lib64/sa/sa1 1 1", "/usr/local/sbin/rotate-exports"]
        user = "root"
        out = [daemon(ident, f"pam_unix(cron:session): session opened for user {pam_user(p, user, 0)} by "
                             f"{'(uid=0)' if not p.pam_new else '(uid=0)'}", unit, pid, facility=10),
               daemon(ident, f"({user}) CMD ({r.choice(cmds)})", unit, pid, facility=9)]
        if p.cron == "cronie" and r.random() < 0.5:
            out.append(daemon("run-parts", "(/etc/cron.hourly) starting 0anacron", unit, pid + 1, facility=9))
            out.append(daemon("run-parts", "(/etc/cron.hourly) finished 0anacron", unit, pid + 1, facility=9))
        out.append(daemon(ident, f"pam_unix(cron:session): session closed for user {user}", unit, pid, facility=10))
        return out

    def timer(self) -> list[Line]:
        unit, desc = self.rng.choice(self.p.timers)
        out = sd_oneshot(self.p, unit, desc, self.rng)
        if unit == "fstrim.service":
            out.insert(1, daemon("fstrim", f"/: {self.rng.uniform(1, 40):.1f} GiB "
                                           f"({self.rng.randint(10**9, 4 * 10**10)} bytes) trimmed on /dev/nvme0n1p2",
                                 unit, self.pid()))
        if unit == "nix-gc.service":
            out.insert(1, daemon("nix-collect-garbage", f"{self.rng.randint(10, 900)} store paths deleted, "
                                                        f"{self.rng.uniform(5, 900):.2f} MiB freed", unit, self.pid()))
        if unit == "dnf-makecache.service":
            out.insert(1, daemon("dnf", "Metadata cache created.", unit, self.pid()))
        return out

    def timesync(self) -> list[Line]:
        p, r = self.p, self.rng
        if p.timesync == "chrony":
            ip = f"{r.choice([162, 185, 51, 129])}.{r.randint(1, 250)}.{r.randint(1, 250)}.{r.randint(1, 250)}"
            return [daemon("chronyd", r.choice([f"Selected source {ip} ({p.ntp_host})",
                                                f"Source {ip} replaced with {ip[:-1]}7 ({p.ntp_host})",
                                                f"Selected source {ip}"]),
                           "chronyd.service", self.fixed["chronyd"], facility=3)]
        ip = f"{r.choice([185, 91, 162])}.{r.randint(1, 250)}.{r.randint(1, 250)}.{r.randint(1, 250)}"
        if r.random() < 0.25:
            # timesyncd giving up on one server of the pool and moving on is routine.
            return [daemon("systemd-timesyncd", f"Timed out waiting for reply from {ip}:123 ({p.ntp_host}).",
                           "systemd-timesyncd.service", self.fixed["timesyncd"], 6)]
        if p.systemd >= 250:
            msg = f"Contacted time server {ip}:123 ({p.ntp_host})."
        else:
            msg = f"Synchronized to time server {ip}:123 ({p.ntp_host})."
        return [daemon("systemd-timesyncd", msg, "systemd-timesyncd.service", self.fixed["timesyncd"])]

    def dhcp(self) -> list[Line]:
        p, r = self.p, self.rng
        addr, gw = f"10.0.{r.randint(0, 3)}.{r.randint(10, 200)}", "10.0.0.1"
        if p.net == "networkd":
            return [daemon("systemd-networkd", f"{p.iface}: DHCPv4 address {addr}/22, gateway {gw} acquired from {gw}",
                           "systemd-networkd.service", self.fixed["networkd"])]
        if p.net == "nm":
            ts = f"{r.randint(1700000000, 1790000000)}.{r.randint(1000, 9999)}"
            return [daemon("NetworkManager", f"<info>  [{ts}] dhcp4 ({p.iface}): state changed new lease, "
                                             f"address={addr}", "NetworkManager.service", self.fixed["nm"]),
                    daemon("NetworkManager", f"<info>  [{ts}] dhcp4 ({p.iface}): option lease_time            => "
                                             "'86400'", "NetworkManager.service", self.fixed["nm"])]
        return [daemon("dhclient", f"DHCPREQUEST for {addr} on {p.iface} to {gw} port 67", "networking.service",
                       self.fixed["dhclient"]),
                daemon("dhclient", f"DHCPACK of {addr} from {gw}", "networking.service", self.fixed["dhclient"]),
                daemon("dhclient", f"bound to {addr} -- renewal in {r.randint(1200, 43000)} seconds.",
                       "networking.service", self.fixed["dhclient"])]

    def sudo(self) -> list[Line]:
        p, r = self.p, self.rng
        user, uid = r.choice(ADMINS[:2])
        cmd = r.choice(["/usr/bin/systemctl status nginx", "/usr/bin/journalctl -u postgresql -n 50",
                        "/usr/bin/tail -f /var/log/nginx/error.log", "/usr/bin/df -h", "/usr/bin/apt list --upgradable"
                        if p.cron == "debian" else "/usr/bin/dnf check-update", "/usr/bin/ss -tlnp"])
        pid = self.pid()
        return [daemon("sudo", f"{user:>8} : TTY=pts/{r.randint(0, 3)} ; PWD=/home/{user} ; USER=root ; COMMAND={cmd}",
                       None, pid, 5, uid, facility=10),
                daemon("sudo", f"pam_unix(sudo:session): session opened for user {pam_user(p, 'root', 0)} by "
                               f"{user}(uid={uid})", None, pid, 6, uid, facility=10),
                daemon("sudo", "pam_unix(sudo:session): session closed for user root", None, pid, 6, uid, facility=10)]

    def dbus(self) -> list[Line]:
        svc = self.rng.choice([("org.freedesktop.hostname1", "dbus-org.freedesktop.hostname1.service"),
                               ("org.freedesktop.timedate1", "dbus-org.freedesktop.timedate1.service"),
                               ("org.freedesktop.locale1", "dbus-org.freedesktop.locale1.service")])
        d = self.fixed["dbus"]
        return [daemon("dbus-daemon", f"[system] Activating via systemd: service name='{svc[0]}' unit='{svc[1]}' "
                                      "requested by ':1.42' (uid=0 pid=1234 comm=\"hostnamectl\")",
                       "dbus.service", d, 5),
                daemon("dbus-daemon", f"[system] Successfully activated service '{svc[0]}'", "dbus.service", d, 5)]

    def resolved(self) -> list[Line]:
        return [daemon("systemd-resolved", self.rng.choice(
            ["Clock change detected. Flushing caches.", "Server returned error NXDOMAIN, mitigating potential DNS "
             "violation DVE-2018-0001, retrying transaction with reduced feature level UDP.",
             "Flushed all caches."]), "systemd-resolved.service", self.fixed["resolved"])]

    def firewall(self) -> list[Line]:
        p, r = self.p, self.rng
        src = r.choice(SCANNER_IPS)
        dpt = r.choice([23, 445, 3389, 5900, 8080, 1433, 6379, 2375, 81])
        body = (f"IN={p.iface} OUT= MAC=52:54:00:12:34:56:fe:54:00:ab:cd:ef:08:00 SRC={src} DST=203.0.113.10 LEN=44 "
                f"TOS=0x00 PREC=0x00 TTL=241 ID={r.randint(1, 65000)} PROTO=TCP SPT={r.randint(1024, 65000)} DPT={dpt} "
                f"WINDOW=1024 RES=0x00 SYN URGP=0")
        if p.firewall == "ufw":
            return [kernel(f"[UFW BLOCK] {body}", 4)]
        if p.firewall == "nixos":
            return [kernel(f"refused connection: {body}", 6)]
        return [kernel(f"filter_IN_public_REJECT: {body}", 4)]

    def snapd(self) -> list[Line]:
        return [daemon("snapd", self.rng.choice(
            ["autorefresh.go:540: auto-refresh: all snaps are up-to-date",
             "storehelpers.go:769: cannot refresh: snap has no updates available: \"core22\", \"lxd\", \"snapd\"",
             "daemon.go:1232: gracefully waiting for running hooks"]), "snapd.service", self.fixed["snapd"])]

    def packagekit(self) -> list[Line]:
        return [daemon("PackageKit", "daemon start", "packagekit.service", self.fixed["packagekitd"], 5),
                daemon("PackageKit", f"get-updates transaction /{self.rng.randint(100, 999)}_{self.rng.randint(10**7, 10**8)}"
                                     f" from uid 1000 finished with success after {self.rng.randint(30, 900)}ms",
                       "packagekit.service", self.fixed["packagekitd"], 5)]

    def nix_daemon(self) -> list[Line]:
        return [daemon("nix-daemon", f"accepted connection from pid {self.pid()}, user {self.rng.choice(['root', 'alice'])}"
                                     f"{' (trusted)' if self.rng.random() < 0.5 else ''}",
                       "nix-daemon.service", self.fixed["nix-daemon"])]

    # --- services a host may run ---------------------------------------------------------------------------------
    def postgres(self) -> list[Line]:
        r = self.rng
        unit = "postgresql@15-main.service" if self.p.cron == "debian" else "postgresql.service"
        ident = "postgres"
        ts = "2026-03-14 02:15:01.123 UTC"  # the prefix is the server's own; only its shape matters here
        msgs = [f"{ts} [{self.fixed['postgres']}] LOG:  checkpoint starting: time",
                f"{ts} [{self.fixed['postgres']}] LOG:  checkpoint complete: wrote {r.randint(3, 900)} buffers "
                f"({r.uniform(0, 5):.1f}%); 0 WAL file(s) added, 0 removed, {r.randint(0, 3)} recycled; "
                f"write={r.uniform(0.1, 60):.3f} s, sync={r.uniform(0, 0.1):.3f} s, total={r.uniform(0.1, 60):.3f} s; "
                f"sync files={r.randint(1, 60)}, longest=0.004 s, average=0.001 s; distance={r.randint(10, 9000)} kB, "
                f"estimate={r.randint(10, 9000)} kB",
                f"{ts} [{self.pid()}] LOG:  automatic vacuum of table \"shop.public.orders\": index scans: 1"]
        return [stdout(ident, m, unit, self.fixed["postgres"], 114) for m in r.sample(msgs, r.randint(1, 2))]

    def redis(self) -> list[Line]:
        r, pid = self.rng, self.fixed["redis"]
        ts = f"14 Mar 2026 0{r.randint(0, 9)}:{r.randint(10, 59)}:{r.randint(10, 59)}.{r.randint(100, 999)}"
        child = self.pid()
        return [stdout("redis-server", f"{pid}:M {ts} * 100 changes in 300 seconds. Saving...", "redis-server.service",
                       pid, 112),
                stdout("redis-server", f"{pid}:M {ts} * Background saving started by pid {child}",
                       "redis-server.service", pid, 112),
                stdout("redis-server", f"{child}:C {ts} * DB saved on disk", "redis-server.service", child, 112),
                stdout("redis-server", f"{pid}:M {ts} * Background saving terminated with success",
                       "redis-server.service", pid, 112)]

    def nginx(self) -> list[Line]:
        p = self.p
        return [pid1(f"Reloading {sd_name(p, 'nginx.service', 'A high performance web server and a reverse proxy server')}..."),
                pid1(f"Reloaded {sd_name(p, 'nginx.service', 'A high performance web server and a reverse proxy server')}.")]

    def docker(self) -> list[Line]:
        r = self.rng
        cid = "".join(r.choice("0123456789abcdef") for _ in range(64))
        return [stdout("dockerd", f"time=\"2026-03-14T02:{r.randint(10, 59)}:{r.randint(10, 59)}.{r.randint(100000000, 999999999)}Z\" "
                                  f"level=info msg=\"ignoring event\" container={cid} module=libcontainerd "
                                  "namespace=moby topic=/tasks/delete type=\"*events.TaskDelete\"",
                       "docker.service", self.fixed["dockerd"])]

    def mysql(self) -> list[Line]:
        r = self.rng
        return [stdout("mysqld", f"2026-03-14T02:{r.randint(10, 59)}:{r.randint(10, 59)}.{r.randint(100000, 999999)}Z "
                                 f"{r.randint(10, 900)} [Note] [MY-010914] [Server] Aborted connection {r.randint(100, 9999)} "
                                 "to db: 'shop' user: 'app' host: 'localhost' (Got timeout reading communication packets).",
                       "mysqld.service", self.fixed["mysqld"], 27)]


def boot_lines(p: Profile, host: str, rng: random.Random, vm: bool = True, reaches_multi_user: bool = True,
               ) -> list[Line]:
    """The start of a boot as the journal keeps it (kernel ring buffer, then systemd); a boot that stops in
    emergency mode never reaches multi-user.target."""
    k = p.kernel
    fam = next(f for f in ("ubuntu", "debian", "rhel", "nixos", "arch") if p.name.startswith(f))
    version = {
        "ubuntu": f"(buildd@lcy02-amd64-080) (x86_64-linux-gnu-gcc-11 (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0, GNU ld "
                  f"(GNU Binutils for Ubuntu) 2.38) #{rng.randint(100, 230)}-Ubuntu SMP Fri Apr 26 12:25:41 UTC 2024",
        "debian": "(debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for "
                  "Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.90-1 (2024-05-03)",
        "rhel": "(mockbuild@x86-64-01.build.eng.rdu2.redhat.com) (gcc version 8.5.0 20210514 (Red Hat 8.5.0-20) (GCC)) "
                "#1 SMP Tue Apr 9 12:31:44 EDT 2024",
        "nixos": "(nixbld@localhost) (gcc (GCC) 13.2.0, GNU ld (GNU Binutils) 2.41) #1-NixOS SMP PREEMPT_DYNAMIC Thu "
                 "May 30 07:37:31 UTC 2024",
        "arch": "(linux@archlinux) (gcc (GCC) 14.2.1 20240910, GNU ld (GNU Binutils) 2.43.0) #1 SMP PREEMPT_DYNAMIC "
                "Tue, 22 Oct 2024 18:31:38 +0000",
    }[fam]
    flags = ("+PAM +AUDIT +SELINUX +APPARMOR +IMA +SMACK +SECCOMP +GCRYPT -GNUTLS +OPENSSL +ACL +BLKID +CURL "
             "+ELFUTILS +FIDO2 +IDN2 -IDN +IPTC +KMOD +LIBCRYPTSETUP +LIBFDISK +PCRE2 -PWQUALITY +P11KIT +QRENCODE "
             "+TPM2 +BZIP2 +LZ4 +XZ +ZLIB +ZSTD -BPF_FRAMEWORK -XKBCOMMON +UTMP +SYSVINIT")
    # systemd before 248 put a period after "system mode" and booted the hybrid cgroup hierarchy by default.
    running = (f"systemd {p.systemd} running in system mode. ({flags} default-hierarchy=hybrid)" if p.systemd < 248
               else f"systemd {p.systemd} running in system mode ({flags} default-hierarchy=unified)")
    if fam == "rhel":
        root = [kernel("XFS (dm-0): Mounting V5 Filesystem"), kernel("XFS (dm-0): Ending clean mount")]
    elif p.systemd < 250:
        root = [kernel("EXT4-fs (vda1): mounted filesystem with ordered data mode. Opts: (null)")]
    else:
        root = [kernel("EXT4-fs (vda1): mounted filesystem 7d1e5c2a-9b44-4f3e-a1c2-3e8f0b6d9a11 ro with ordered data "
                       "mode. Quota mode: none.")]
    out = [kernel(f"Linux version {k} {version}", 5),
           kernel(f"Command line: BOOT_IMAGE=/boot/vmlinuz-{k} root=UUID=7d1e5c2a-9b44-4f3e-a1c2-3e8f0b6d9a11 ro "
                  "quiet", 6),
           kernel("BIOS-provided physical RAM map:"),
           kernel("DMI: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.3-debian-1.16.3-2 04/01/2014"
                  if vm else "DMI: Supermicro SYS-5019C-M/X11SCM-F, BIOS 1.9 09/16/2022"),
           kernel("Hypervisor detected: KVM" if vm else "tsc: Detected 3400.000 MHz processor"),
           kernel("Memory: 8062212K/8388076K available (16384K kernel code, 2345K rwdata)"),
           kernel("ACPI: Core revision 20230628"),
           kernel("clocksource: Switched to clocksource kvm-clock" if vm else "clocksource: Switched to clocksource tsc"),
           kernel("PCI: Using configuration type 1 for base access"),
           kernel("Freeing unused kernel image (initmem) memory: 3292K"),
           kernel("Run /init as init process"),
           kernel("random: crng init done", 5),
           *root,
           pid1(running, 5),
           pid1("Detected virtualization kvm." if vm else "Detected architecture x86-64."),
           pid1(f"Hostname set to <{host}>."),
           daemon("systemd-journald", "Journal started", "systemd-journald.service", 312),
           daemon("systemd-journald", "Runtime Journal (/run/log/journal/3f0b2c9d8e7a4b6c) is 8.0M, max 78.6M, "
                                      "70.6M free.", "systemd-journald.service", 312),
           *([] if fam == "rhel" else [
               kernel("EXT4-fs (vda1): re-mounted. Opts: errors=remount-ro" if p.systemd < 250 else
                      "EXT4-fs (vda1): re-mounted 7d1e5c2a-9b44-4f3e-a1c2-3e8f0b6d9a11 r/w. Quota mode: none.")]),
           pid1("Reached target Local File Systems." if p.systemd < 250 else
                "Reached target local-fs.target - Local File Systems."),
           pid1("Reached target Network." if p.systemd < 250 else "Reached target network.target - Network."),
           pid1("Reached target Multi-User System." if p.systemd < 250 else
                "Reached target multi-user.target - Multi-User System."),
           pid1("Startup finished in 2.134s (kernel) + 5.870s (userspace) = 8.004s." if p.systemd < 250 else
                "Startup finished in 1.905s (kernel) + 4.121s (userspace) = 6.027s."),
           ]
    if not reaches_multi_user:
        out = out[:-4]
    if vm:
        out.insert(9, kernel("input: ImExPS/2 Generic Explorer Mouse as /devices/platform/i8042/serio1/input/input3"))
        out.insert(10, kernel("ata2.00: ATAPI: QEMU DVD-ROM, 2.5+, max UDMA/100"))
    return out
