"""Pods: a network namespace behind a veth on `cni0`, and (for the socat pod) an echo process.

This is what the bridge CNI plugin does for each pod on a k3s node: make a namespace, create a veth
pair whose node end (`vethXXXXXXXX`) is enslaved to `cni0` and whose other end is the pod's `eth0`,
give `eth0` the pod's address and a default route via the bridge. The veth is created with its
peer directly inside the pod's namespace, so nothing ever appears in the host namespace. The echo
process is started inside the pod's namespace in its own session, so it outlives the svcwatch that
started it, and is identified by its process id plus start time. The process that started an echo
keeps its `Popen` handle (`_STARTED`) for as long as the echo runs, so that whoever ends it in this
process reaps it, and no handle is dropped while its process still runs (Python warns about that).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from svcwatch import netns
from svcwatch.lab.instances import PodRecord, ProcessRef
from svcwatch.lab.topology import LabSpec, PodPlan
from svcwatch.model.errors import SetupError

ECHO_MODULE = "svcwatch.lab.echo"
ECHO_READY_TIMEOUT = 10.0
TCP_LISTEN = "0A"
# The echo processes this process started, by pid, while they may still run (see the docstring).
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


def iproute_in(name: str) -> Any:
    """An IPRoute socket bound to namespace `name` (opened from this thread, no helper process)."""
    from pyroute2 import IPRoute  # heavy: only the lab needs netlink

    with netns.entered(name):
        return IPRoute()


def create_netns(name: str) -> None:
    """Create a named namespace (like `ip netns add`) without forking.

    pyroute2's `netns.create` forks a helper, which is unsafe once the dashboard runs threads
    (a rollout happens mid-session). Instead a short-lived thread unshares its own network
    namespace and bind-mounts it under /run/netns with pyroute2's `attach`; setns(2) and unshare(2)
    with CLONE_NEWNET act on the calling thread only, so the rest of the process stays where it is.
    """
    import ctypes
    import threading

    from pyroute2 import netns as pr_netns  # heavy: only the lab needs it

    failure: list[BaseException] = []

    def _in_thread() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(netns.CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"unshare(CLONE_NEWNET): {os.strerror(err)}")
            pr_netns.attach(name, f"self/task/{threading.get_native_id()}")
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the caller
            failure.append(exc)

    worker = threading.Thread(target=_in_thread, name=f"netns-create-{name}")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]


def remove_netns(name: str) -> bool:
    """Unmount and unlink a named namespace; False if it did not exist."""
    from pyroute2 import netns as pr_netns

    if not netns.exists(name):
        return False
    try:
        pr_netns.remove(name)
    except FileNotFoundError:
        return False
    return True


def write_sysctl(name: str, key: str, value: str) -> None:
    """Write a per-namespace sysctl from a thread inside `name` (never the host's)."""
    with netns.entered(name), open(f"/proc/sys/{key.replace('.', '/')}", "w") as fh:
        fh.write(value)


def read_sysctl(name: str, key: str) -> str:
    with netns.entered(name), open(f"/proc/sys/{key.replace('.', '/')}") as fh:
        return fh.read().strip()


def quiet_ipv6(name: str) -> None:
    """No IPv6 in the lab: router solicitations and MLD reports are only noise on the bridge."""
    for scope in ("all", "default"):
        write_sysctl(name, f"net.ipv6.conf.{scope}.disable_ipv6", "1")


def add_pod(node_ipr: Any, bridge_index: int, spec: LabSpec, plan: PodPlan | PodRecord) -> None:
    """Create the pod's namespace, its veth pair on `cni0`, its address and default route."""
    create_netns(plan.netns)
    quiet_ipv6(plan.netns)
    add_veth(node_ipr, bridge_index, spec, plan)


def add_veth(node_ipr: Any, bridge_index: int, spec: LabSpec, pod: PodPlan | PodRecord) -> None:
    """The pod's veth pair (node end on `cni0`, `eth0` in the pod) and the pod's address/route."""
    node_ipr.link(
        "add", ifname=pod.veth, kind="veth", peer={"ifname": "eth0", "net_ns_fd": pod.netns}
    )
    index = node_ipr.link_lookup(ifname=pod.veth)[0]
    node_ipr.link("set", index=index, master=bridge_index, state="up")
    configure_inside(pod.netns, pod.ip, spec.pod_prefix, spec.bridge_ip)


def configure_inside(name: str, address: str, prefixlen: int, gateway: str) -> None:
    """Inside namespace `name`: lo up, `eth0` with `address`, up, default route via `gateway`.

    Idempotent, so a repair can run it on a half-broken namespace: what is there stays.
    """
    ipr = iproute_in(name)
    try:
        lo, eth0 = ipr.link_lookup(ifname="lo")[0], ipr.link_lookup(ifname="eth0")[0]
        ipr.link("set", index=lo, state="up")
        have = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(family=2, index=eth0)}
        if address not in have:
            ipr.addr("add", index=eth0, address=address, prefixlen=prefixlen)
        ipr.link("set", index=eth0, state="up")
        ipr.route("replace", dst="0.0.0.0/0", gateway=gateway)
    finally:
        ipr.close()


def remove_pod(node_ipr: Any | None, pod: PodRecord) -> None:
    """Stop the pod's process and remove its namespace (its veth pair goes with it)."""
    if pod.echo is not None:
        kill_process(pod.echo)
    if node_ipr is not None:
        for index in node_ipr.link_lookup(ifname=pod.veth):
            node_ipr.link("del", index=index)
    remove_netns(pod.netns)


def start_echo(spec: LabSpec, pod: PodPlan | PodRecord) -> subprocess.Popen[bytes]:
    """Start the echo listener inside the pod (detached); call `wait_ready` before relying on it."""
    argv = [
        sys.executable,
        "-m",
        ECHO_MODULE,
        "--port",
        str(pod.port),
        "--lab",
        spec.name,
        "--pod",
        pod.name,
    ]
    proc: subprocess.Popen[bytes] = netns.popen_in(
        pod.netns,
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
        env=_echo_env(),
    )
    _hold(proc)
    return proc


def _echo_env() -> dict[str, str]:
    # The child imports svcwatch from wherever this process did (an editable checkout or a wheel).
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root}


def wait_ready(
    proc: subprocess.Popen[bytes], pod_name: str, timeout: float = ECHO_READY_TIMEOUT
) -> ProcessRef:
    """Block until the echo process says `ready`; SetupError with its stderr if it dies first."""
    assert proc.stdout is not None and proc.stderr is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else b""
    if line.strip() != b"ready":
        proc.kill()
        proc.wait()
        _STARTED.pop(proc.pid, None)
        err = proc.stderr.read().decode(errors="replace").strip().splitlines()
        raise SetupError(
            f"the echo process of pod {pod_name} did not start: {err[-1] if err else 'timed out'}"
        )
    proc.stdout.close()
    proc.stderr.close()
    ref = ProcessRef.of(proc.pid)
    if ref is None or proc.poll() is not None:
        _STARTED.pop(proc.pid, None)
        raise SetupError(f"the echo process of pod {pod_name} exited right after starting")
    return ref


def _hold(proc: subprocess.Popen[bytes]) -> None:
    """Keep `proc` until it ends; reap the ones that ended meanwhile (crashed, or killed by
    another svcwatch, such as `lab down`)."""
    for pid, started in list(_STARTED.items()):
        if started.poll() is not None:
            del _STARTED[pid]
    _STARTED[proc.pid] = proc


def kill_process(ref: ProcessRef, timeout: float = 2.0) -> bool:
    """SIGKILL a process we started (if it is still that process) and wait until it is gone."""
    started = _STARTED.pop(ref.pid, None)
    if not ref.alive():
        if started is not None:
            started.poll()  # reap it, if it died on its own
        return False
    try:
        os.kill(ref.pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if started is not None:  # our own child: reap it
            started.poll()
        else:  # someone else's (or a child of ours from an older API): init reaps it
            try:
                os.waitpid(ref.pid, os.WNOHANG)
            except ChildProcessError:
                pass
        if not ref.alive():
            return True
        time.sleep(0.002)
    return True


def listening_ports(name: str) -> set[int]:
    """TCP ports in LISTEN state inside namespace `name` (its /proc/net/tcp, read from inside).

    A namespace that is gone (a pod a rollout just removed, read from a record a moment old)
    listens on nothing: callers ask "is the pod serving?", and the answer is no.
    """
    try:
        with netns.entered(name):
            lines = Path("/proc/thread-self/net/tcp").read_text().splitlines()[1:]
    except FileNotFoundError:
        return set()
    ports = set()
    for line in lines:
        fields = line.split()
        if len(fields) > 3 and fields[3] == TCP_LISTEN:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
