"""The in-cluster probe: a short-lived pod that connects to a ClusterIP, for Services with no port
this machine can reach.

A ClusterIP is only routable inside the cluster, so svcwatch starts one ordinary pod (not
hostNetwork, not privileged: it passes the `baseline` Pod Security level) from a stock image with
bash -- the agent image by default -- labelled `app.kubernetes.io/managed-by: svcwatch` so
`cluster down` finds it, and deletes it on exit. Each probe is one exec: bash's /dev/tcp connects
to CLUSTER-IP:PORT as any client pod would (through the node's KUBE-SERVICES rules), sends the
payload and reads back as much, timing both with $EPOCHREALTIME. A connection is a success (an
echo server answers the payload; other servers may answer nothing); a refusal or timeout is the
io-error the lab's probes report, in the same words.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from svcwatch.cluster.agent import _agent_state, pending_words
from svcwatch.cluster.api import ClusterApi
from svcwatch.cluster.transport import Transport
from svcwatch.cluster.waiting import poll_until
from svcwatch.model.errors import SetupError
from svcwatch.model.events import ProbeEvent
from svcwatch.sinks import EventSink

PROBE_LABELS = {"app.kubernetes.io/managed-by": "svcwatch", "app.kubernetes.io/component": "probe"}
CONTAINER = "agent"  # the name the transports exec into
PROBE_SCRIPT = r"""
t0=$EPOCHREALTIME
exec 3<>"/dev/tcp/$1/$2" || exit 7
t1=$EPOCHREALTIME
printf %s "$3" >&3
IFS= read -r -t "$4" -N "${#3}" reply <&3
t2=$EPOCHREALTIME
printf '%s %s %s\n%s' "$t0" "$t1" "$t2" "$reply"
"""
_WORDS = {  # bash's strerror text -> the lab probe's words and errno
    "connection refused": ("connection refused", "ECONNREFUSED"),
    "no route to host": ("no route to host", "EHOSTUNREACH"),
    "network is unreachable": ("network is unreachable", "ENETUNREACH"),
    "connection timed out": ("i/o timeout", "ETIMEDOUT"),
    "connection reset by peer": ("connection reset by peer", "ECONNRESET"),
}


def render_probe_pod(namespace: str, image: str) -> dict[str, Any]:
    name = f"svcwatch-probe-{secrets.token_hex(3)}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(PROBE_LABELS)},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "activeDeadlineSeconds": 4 * 3600,  # gone even if svcwatch is killed
            "containers": [{"name": CONTAINER, "image": image, "command": ["sleep", "14400"]}],
        },
    }


def probe_argv(ip: str, port: int, payload: bytes, timeout: float) -> list[str]:
    """One probe: bash connects, sends, reads back; `timeout` ends a hung connect."""
    text = payload.decode(errors="replace")
    seconds = f"{timeout:g}"
    limit = f"{timeout * 2 + 1:g}"
    return ["timeout", limit, "bash", "-c", PROBE_SCRIPT, "probe", ip, str(port), text, seconds]


def probe_event(
    output: str | None, error: str, where: tuple[str, str, int], started: float
) -> ProbeEvent:
    """The ProbeEvent for one probe's output (None when the command failed with `error`)."""
    src, dst, dport = where
    now = time.time()
    if output is not None:
        stamps, _, reply = output.partition("\n")
        t0, t1, t2 = (float(x.replace(",", ".")) for x in stamps.split())
        return ProbeEvent(
            now, "echo-ok", src, None, dst, dport, connect_ms=(t1 - t0) * 1000,
            echo_ms=(t2 - t1) * 1000, nbytes=len(reply.encode()), started=started,
        )  # fmt: skip
    lowered = error.lower()
    words, errno = next(
        (found for key, found in _WORDS.items() if key in lowered),
        ("i/o timeout", "ETIMEDOUT") if "exit 124" in lowered else (lowered[-80:], None),
    )
    return ProbeEvent(
        now, "io-error", src, None, dst, dport, phase="connect", error=words, errno=errno,
        started=started,
    )  # fmt: skip


class InClusterProbe:
    """A probe pod, and a thread that probes the ClusterIP from it every `interval` seconds."""

    def __init__(self, api: ClusterApi, namespace: str, image: str) -> None:
        self.api, self.namespace, self.image = api, namespace, image
        self.pod: str | None = None
        self.pod_ip, self.node = "", ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start_pod(
        self,
        progress: Callable[[str], None],
        timeout: float = 120.0,
        cancelled: threading.Event | None = None,
    ) -> str:
        """Create the probe pod and wait until it runs (or `cancelled`: WaitCancelled, and
        `stop` deletes it); the node it landed on."""
        body = render_probe_pod(self.namespace, self.image)
        name = self.pod = str(body["metadata"]["name"])
        self.api.create("Pod", self.namespace, body)
        progress(f"started probe pod {name} ({self.image})")

        def cannot_run(state: str) -> SetupError:
            return SetupError(
                f"probe pod {name} cannot run ({state}, image {self.image}): "
                "pass --agent-image with an image that has bash, or --probe HOST:PORT"
            )

        def look() -> tuple[dict[str, Any] | None, str]:
            pod = self.api.read("Pod", self.namespace, name)
            state = _agent_state(pod)
            if state in ("ErrImagePull", "ImagePullBackOff", "Failed"):
                raise cannot_run(state)
            return (pod if state == "running" else None), pending_words(pod)

        pod = poll_until(
            look,
            timeout=timeout,
            every=0.5,
            progress=progress,
            waiting=f"waiting for probe pod {name}",
            gave_up=cannot_run,
            cancelled=cancelled,
        )
        self.pod_ip = str((pod.get("status") or {}).get("podIP") or "?")
        self.node = str((pod.get("spec") or {}).get("nodeName") or "")
        return self.node

    def start_probing(
        self,
        transport: Transport,
        sink: EventSink,
        target: tuple[str, int],
        *,
        interval: float,
        timeout: float,
        payload: bytes,
    ) -> None:
        argv = probe_argv(target[0], target[1], payload, timeout)
        where = (self.pod_ip, target[0], target[1])

        def loop() -> None:
            while not self._stop.is_set():
                started = time.time()
                try:
                    output: str | None = transport.run(argv, timeout=timeout * 2 + 5)
                    error = ""
                except SetupError as exc:
                    output, error = None, str(exc)
                if not self._stop.is_set():
                    sink.emit(probe_event(output, error, where, started))
                self._stop.wait(max(0.0, interval - (time.time() - started)))

        self._thread = threading.Thread(target=loop, name="in-cluster-probe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop probing and delete the probe pod."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.pod is not None:
            self.api.delete("Pod", self.namespace, self.pod)
            self.pod = None


def delete_probe_pods(api: ClusterApi, namespace: str) -> list[str]:
    """Delete the probe pods a run left in `namespace` (killed before cleaning up); what went."""
    pods = api.list("Pod", namespace, PROBE_LABELS)
    return [
        p["metadata"]["name"] for p in pods if api.delete("Pod", namespace, p["metadata"]["name"])
    ]
