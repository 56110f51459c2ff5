"""What a lab left on disk: its record (spec, pods, processes), its objects, and who controls it.

A lab outlives the process that built it, so everything needed to find and remove it again is
written to `<state>/labs/<name>/`: `lab.json` (the spec, the pods with their namespaces, veths and
echo process ids, and whether the lab stays when its sessions end), the ObjectStore's YAML files,
`users.json` (the svcwatch sessions using the lab right now) and `controller.pid` when a
long-running svcwatch reconciles the lab itself. Process ids are stored with their start time, so a
recycled pid is never mistaken for (or killed as) one of ours, and a user that died is ignored.
The lock files live beside the lab directories (`labs/.<name>.<what>.lock`), so removing a lab's
state never unlinks a lock another process is waiting on.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from svcwatch.lab.topology import LabSpec, validate_lab_name
from svcwatch.store import atomic_write, state_writes

RECORD_FILE = "lab.json"
CONTROLLER_FILE = "controller.pid"
USERS_FILE = "users.json"


@dataclass(frozen=True)
class ProcessRef:
    """A process id plus its kernel start time (field 22 of /proc/PID/stat)."""

    pid: int
    start: int

    @classmethod
    def of(cls, pid: int) -> ProcessRef | None:
        start = process_start_time(pid)
        return None if start is None else cls(pid, start)

    def alive(self) -> bool:
        return process_start_time(self.pid) == self.start and not _is_zombie(self.pid)


@dataclass
class PodRecord:
    """One pod as built: name, address, namespace, node-side veth, echo port and process."""

    name: str
    ip: str
    netns: str
    veth: str
    port: int | None = None
    echo: ProcessRef | None = None
    generation: int = 0


@dataclass
class LabRecord:
    """The lab's `lab.json`."""

    spec: LabSpec
    status: str = "building"  # building | ready
    builder: ProcessRef | None = None
    pods: list[PodRecord] = field(default_factory=list)
    echo_pod: str = ""
    backend: str = ""
    generation: int = 0
    proxy_mode: str = "iptables"  # kube-proxy's mode on this lab: iptables | nftables
    # Who made the lab ("lab up", "svcwatch", "svcwatch run"), and who asked for it to stay after
    # the sessions using it end ("lab up", "--keep"; "": it goes with the last session using it).
    made_by: str = "lab up"
    kept_by: str = "lab up"

    def to_json(self) -> str:
        data = asdict(self)
        data["spec"] = self.spec.to_dict()
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LabRecord:
        data: dict[str, Any] = json.loads(text)
        pods = [_pod_from(p) for p in data.get("pods", [])]
        builder = data.get("builder")
        return cls(
            spec=LabSpec.from_dict(data["spec"]),
            status=data.get("status", "building"),
            builder=ProcessRef(**builder) if builder else None,
            pods=pods,
            echo_pod=data.get("echo_pod", ""),
            backend=data.get("backend", ""),
            generation=int(data.get("generation", 0)),
            proxy_mode=str(data.get("proxy_mode", "iptables")),
            made_by=str(data.get("made_by", "lab up")),
            kept_by=str(data.get("kept_by", "lab up")),
        )

    def pod(self, name: str) -> PodRecord | None:
        return next((p for p in self.pods if p.name == name), None)


def _pod_from(data: dict[str, Any]) -> PodRecord:
    echo = data.get("echo")
    return PodRecord(**{**data, "echo": ProcessRef(**echo) if echo else None})


def labs_root(state_root: Path) -> Path:
    return state_root / "labs"


def lab_dir(state_root: Path, name: str) -> Path:
    return labs_root(state_root) / validate_lab_name(name)


def load_record(state_root: Path, name: str) -> LabRecord | None:
    try:
        return LabRecord.from_json((lab_dir(state_root, name) / RECORD_FILE).read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return None  # a half-written or hand-edited record: treat the lab as broken


def save_record(state_root: Path, record: LabRecord) -> None:
    atomic_write(lab_dir(state_root, record.spec.name) / RECORD_FILE, record.to_json() + "\n")


def recorded_names(state_root: Path) -> list[str]:
    try:
        return sorted(p.name for p in labs_root(state_root).iterdir() if p.is_dir())
    except FileNotFoundError:
        return []


def remove_state(state_root: Path, name: str) -> bool:
    path = lab_dir(state_root, name)
    existed = (path / RECORD_FILE).exists()  # the directory alone may be an interrupted build's
    shutil.rmtree(path, ignore_errors=True)
    return existed


@contextmanager
def locked(state_root: Path, name: str, what: str = "lab") -> Iterator[None]:
    """Hold an exclusive lock on one of the lab's lock files (`lab`: up/down and who uses the
    lab, `sync`: rules, `controller`: the lease). Not re-entrant: never nest the same `what`."""
    root = labs_root(state_root)
    with state_writes(state_root):
        root.mkdir(parents=True, exist_ok=True)
        fh = open(root / f".{validate_lab_name(name)}.{what}.lock", "a")  # noqa: SIM115
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def process_start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


# --- controller lease: one long-running svcwatch reconciles, `lab scenario` then only writes ----


def claim_controller(name: str, state_root: Path, pid: int | None = None) -> bool:
    """Record `pid` (default: this process) as the lab's controller: False if another live one is"""
    with locked(state_root, name, "controller"):
        holder = controller_of(name, state_root)
        me = ProcessRef.of(pid or os.getpid())
        if me is None:
            return False
        if holder is not None and holder != me:
            return False
        atomic_write(lab_dir(state_root, name) / CONTROLLER_FILE, json.dumps(asdict(me)) + "\n")
        return True


def release_controller(name: str, state_root: Path, pid: int | None = None) -> None:
    """Drop the lease if `pid` (default: this process) holds it."""
    with locked(state_root, name, "controller"):
        me = ProcessRef.of(pid or os.getpid())
        holder = _read_controller(name, state_root)
        if holder is not None and (holder == me or not holder.alive()):
            (lab_dir(state_root, name) / CONTROLLER_FILE).unlink(missing_ok=True)


def controller_of(name: str, state_root: Path) -> ProcessRef | None:
    """The live process that reconciles this lab, if any (a dead holder counts as none)."""
    holder = _read_controller(name, state_root)
    return holder if holder is not None and holder.alive() else None


def _read_controller(name: str, state_root: Path) -> ProcessRef | None:
    try:
        data = json.loads((lab_dir(state_root, name) / CONTROLLER_FILE).read_text())
        return ProcessRef(int(data["pid"]), int(data["start"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


# --- users: the svcwatch sessions that use the lab right now (callers hold `locked(..., "lab")`) --


@dataclass(frozen=True)
class LabUser:
    """A running svcwatch session on the lab: its process and what it is (`svcwatch run`, ...)."""

    pid: int
    start: int
    command: str

    @property
    def ref(self) -> ProcessRef:
        return ProcessRef(self.pid, self.start)

    def describe(self) -> str:
        return f"`{self.command}` (pid {self.pid})"


def lab_users(state_root: Path, name: str) -> list[LabUser]:
    """The live users of the lab; a user that died without saying goodbye is ignored."""
    try:
        data = json.loads((lab_dir(state_root, name) / USERS_FILE).read_text())
        users = [LabUser(int(u["pid"]), int(u["start"]), str(u["command"])) for u in data]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return []
    return [u for u in users if u.ref.alive()]


def add_user(state_root: Path, name: str, command: str, pid: int | None = None) -> LabUser:
    """Record this process (or `pid`) as a user of the lab."""
    me = ProcessRef.of(pid or os.getpid())
    assert me is not None, "the calling process always has a /proc entry"
    user = LabUser(me.pid, me.start, command)
    _write_users(state_root, name, [u for u in lab_users(state_root, name) if u != user] + [user])
    return user


def remove_user(state_root: Path, name: str, user: LabUser) -> list[LabUser]:
    """Forget `user`; returns the users left."""
    left = [u for u in lab_users(state_root, name) if u != user]
    if (lab_dir(state_root, name) / RECORD_FILE).exists():
        _write_users(state_root, name, left)
    return left


def _write_users(state_root: Path, name: str, users: list[LabUser]) -> None:
    atomic_write(
        lab_dir(state_root, name) / USERS_FILE, json.dumps([asdict(u) for u in users]) + "\n"
    )


# --- the machine-wide index: which state directory each lab's namespaces belong to -------------

# Namespace names are machine-wide, state directories are not: this index lets `lab list` and
# `lab down --all` find a lab whose state directory was deleted without claiming the labs of
# another state directory (another user's, or a test's).
INDEX_DIR = Path("/run/svcwatch/labs")


def index_lab(name: str, state_root: Path) -> None:
    try:
        atomic_write(INDEX_DIR / f"{name}.json", json.dumps({"state": str(state_root)}) + "\n")
    except Exception:  # noqa: BLE001 -- the index only helps find orphans; the lab works without it
        pass


def unindex_lab(name: str) -> None:
    (INDEX_DIR / f"{name}.json").unlink(missing_ok=True)


def is_orphan(name: str, state_root: Path) -> bool:
    """True if lab `name` has no record here and none in the state directory that built it."""
    if (lab_dir(state_root, name) / RECORD_FILE).exists():
        return False
    try:
        owner = Path(json.loads((INDEX_DIR / f"{name}.json").read_text())["state"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return False  # not indexed: whose it is cannot be known, so it is not ours to remove
    return owner == state_root or not (lab_dir(owner, name) / RECORD_FILE).exists()
