"""Typed settings for a session: the CLI's flags as dataclasses, checked where they are made.

The flags used to travel as `**kwargs` from click through `make_session` into the sessions, each of
which swallowed the ones it did not know: a misspelt flag was dropped without a word. Now
`SessionSettings.from_flags` names every flag it takes (a misspelt or unknown one is a TypeError
at once, and mypy checks every call that spells them out), and each session takes only its own
part: `LabSettings` or `ClusterSettings`, each with the `ProbeFlags` both share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svcwatch.cluster.kubeconfig import SERVICE_ACCOUNT_DIR
from svcwatch.model.errors import InputError


@dataclass(frozen=True, kw_only=True)
class ProbeFlags:
    """--interval, --timeout, --payload, --probe (svcwatch.cli.options.probe_options)."""

    interval: float = 1.0
    timeout: float = 2.0
    payload: str | bytes = "hello"
    probe_target: str | None = None  # HOST:PORT; None: the node's IP:nodePort


@dataclass(frozen=True, kw_only=True)
class LabSettings:
    """The lab's flags (svcwatch.cli.options.lab_options) and where its state lives."""

    lab_name: str = "default"
    manifests: tuple[str, ...] = ()  # -f files or directories; empty: the bundled manifests/
    pods: int = 7
    scenario: str | None = None
    sync_delay: float = 0.0
    keep: bool = False
    proxy_mode: str | None = None  # iptables | nftables; None: the lab's recorded mode
    probes: ProbeFlags = field(default_factory=ProbeFlags)
    state_root: Path | None = None  # None: svcwatch.locations.state_dir()


TransportFactory = Callable[..., Any]  # (api, namespace, pod, node) -> a cluster Transport


@dataclass(frozen=True, kw_only=True)
class ClusterSettings:
    """The cluster's flags (svcwatch.cli.options.cluster_options, plus -f and -s)."""

    context: str | None = None
    kubeconfig: str | None = None
    namespace: str | None = None
    agent_image: str | None = None  # None: svcwatch.cluster.agent.DEFAULT_IMAGE
    agent_namespace: str | None = None  # None: the Service's namespace
    in_cluster: str | None = None  # --in-cluster: the ServiceAccount directory to use
    take_over: bool = False
    scenario: str | None = None
    manifests: tuple[str, ...] = ()
    probes: ProbeFlags = field(default_factory=ProbeFlags)
    service: str | None = None  # svc/NAME: an existing Service (session/cluster_existing.py)
    # Tests run the agent's commands locally; None: the exec API (svcwatch.cluster.transport).
    transport_factory: TransportFactory | None = None


@dataclass(frozen=True, kw_only=True)
class SessionSettings:
    """Which session to make and how to wrap it (see svcwatch.session.factory.make_session)."""

    backend: LabSettings | ClusterSettings = field(default_factory=LabSettings)
    record: Path | None = None  # --record FILE
    pcap: Path | None = None  # --pcap FILE
    diagnosis: bool = False  # add DiagnosisChanged events (svcwatch run)

    @classmethod
    def from_flags(
        cls,
        *,
        cluster: bool,
        lab_name: str,
        manifests: Sequence[str],
        pods: int,
        scenario: str | None,
        sync_delay: float,
        keep: bool,
        proxy_mode: str | None,
        interval: float,
        timeout: float,
        payload: str,
        probe_target: str | None,
        context: str | None,
        kubeconfig: str | None,
        namespace: str | None,
        agent_image: str | None,
        take_over: bool,
        agent_namespace: str | None = None,
        in_cluster: bool = False,
        service: str | None = None,
        record: str | None = None,
        pcap: str | None = None,
        diagnosis: bool = False,
    ) -> SessionSettings:
        """The settings from the shared flags of svcwatch.cli.options, named one by one."""
        probes = ProbeFlags(
            interval=interval, timeout=timeout, payload=payload, probe_target=probe_target
        )
        backend: LabSettings | ClusterSettings
        if cluster and proxy_mode:
            raise InputError(
                "--proxy-mode is for the lab; on a cluster svcwatch reads the mode its "
                "kube-proxy runs in from the nodes"
            )
        if service and not cluster:
            raise InputError(
                f"svc/{service} is a Service on a cluster: add --cluster "
                "(the lab has only its own demo Service)"
            )
        if cluster:
            backend = ClusterSettings(
                context=context,
                kubeconfig=kubeconfig,
                namespace=namespace,
                agent_image=agent_image,
                agent_namespace=agent_namespace,
                in_cluster=SERVICE_ACCOUNT_DIR if in_cluster else None,
                take_over=take_over,
                scenario=scenario,
                manifests=tuple(manifests),
                probes=probes,
                service=service,
            )
        else:
            backend = LabSettings(
                lab_name=lab_name,
                manifests=tuple(manifests),
                pods=pods,
                scenario=scenario,
                sync_delay=sync_delay,
                keep=keep,
                proxy_mode=proxy_mode,
                probes=probes,
            )
        return cls(
            backend=backend,
            record=Path(record) if record else None,
            pcap=Path(pcap) if pcap else None,
            diagnosis=diagnosis,
        )
