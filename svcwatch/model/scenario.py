"""Scenarios: the happy path and the breaks, as pure EndpointSlice transforms.

Each scenario is a function of the happy-path ("baseline") slice, so the same definitions drive the
lab and a real cluster. The blog post's breaks are `wrong-port` (12345 -> 12346: RST, connection
refused), `wrong-ip` (an address no pod has: unanswered ARP, timeout) and `mixed` (the wrong and the
right address: 50/50 statistic rules, intermittent failures). Scenarios that also need something
done to a pod (its listener stopped, a rollout) name a `pod_action` that the backend carries out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, replace

from svcwatch.model.endpointslice import Endpoint, EndpointConditions, EndpointSlice
from svcwatch.model.errors import InputError


@dataclass(frozen=True, slots=True)
class ScenarioContext:
    """What a transform needs besides the baseline: which IP and port are known to be wrong."""

    baseline: EndpointSlice
    unused_ip: str | None = None
    unused_port: int | None = None

    def wrong_ip(self) -> str:
        if self.unused_ip:
            return self.unused_ip
        first = next((e.address for e in self.baseline.endpoints if e.address), None)
        if first is None:
            raise InputError(
                "the baseline slice has no endpoint address to break", field="endpoints"
            )
        return str(ipaddress.ip_address(first) + 1)

    def wrong_port(self, port: int) -> int:
        return self.unused_port or (port + 1 if port < 65535 else port - 1)


Transform = Callable[[ScenarioContext], EndpointSlice]


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named, keyed break (or the happy path) and how a learner should read it."""

    name: str
    key: str
    title: str
    caption: str
    transform: Transform
    pod_action: str | None = None


def _happy(ctx: ScenarioContext) -> EndpointSlice:
    return ctx.baseline


def _wrong_port(ctx: ScenarioContext) -> EndpointSlice:
    ports = [replace(p, port=ctx.wrong_port(p.port)) if p.port else p for p in ctx.baseline.ports]
    return ctx.baseline.with_ports(*ports)


def _wrong_ip(ctx: ScenarioContext) -> EndpointSlice:
    bad = ctx.wrong_ip()
    return ctx.baseline.with_endpoints(
        *(replace(e, addresses=(bad,), target_ref=None) for e in ctx.baseline.endpoints[:1])
    )


def _mixed(ctx: ScenarioContext) -> EndpointSlice:
    good = ctx.baseline.endpoints[:1]
    bad = tuple(replace(e, addresses=(ctx.wrong_ip(),), target_ref=None) for e in good)
    # The blog post lists the bad address first; kube-proxy sorts endpoints anyway.
    return ctx.baseline.with_endpoints(*bad, *good)


def _not_ready(ctx: ScenarioContext) -> EndpointSlice:
    return ctx.baseline.with_endpoints(
        *(
            replace(e, conditions=EndpointConditions(ready=False, serving=False, terminating=False))
            for e in ctx.baseline.endpoints
        )
    )


def _empty(ctx: ScenarioContext) -> EndpointSlice:
    return ctx.baseline.with_endpoints()


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "happy",
            "1",
            "Happy path",
            "The slice points at the pod's real IP and port: SYN, SYN-ACK, echo.",
            _happy,
        ),
        Scenario(
            "wrong-port",
            "2",
            "Wrong port",
            "The slice says port 12346 but the pod listens on 12345: the pod's kernel answers the "
            "DNATed SYN with RST, and the client sees 'connection refused'.",
            _wrong_port,
        ),
        Scenario(
            "wrong-ip",
            "3",
            "Wrong IP",
            "The slice points at an IP no pod has: the node asks 'who-has' on the bridge, nobody "
            "answers, and the client times out (or gets 'no route to host' once ARP gives up).",
            _wrong_ip,
        ),
        Scenario(
            "mixed",
            "4",
            "Good + bad IP",
            "One good and one bad endpoint: kube-proxy's statistic rule sends about half of the "
            "new connections to each, so failures are intermittent.",
            _mixed,
        ),
        Scenario(
            "not-ready",
            "5",
            "Not ready",
            "The endpoint is not ready, so kube-proxy drops it; with no endpoint left, a "
            "filter-table REJECT answers at once and the client sees 'connection refused'.",
            _not_ready,
        ),
        Scenario(
            "empty",
            "6",
            "No endpoints",
            "The slice lists no endpoints: kube-proxy writes only the 'has no endpoints' "
            "REJECT rules.",
            _empty,
        ),
        Scenario(
            "pod-down",
            "7",
            "Pod down",
            "The slice still lists the pod, but its process has crashed: the pod's own kernel "
            "sends RST.",
            _happy,
            pod_action="stop-listener",
        ),
        Scenario(
            "rollout-race",
            "8",
            "Rollout race",
            "A new pod replaces the old one, but the rule still points at the old IP until "
            "kube-proxy syncs: SYNs to an address nobody has any more (flooded, or ARP "
            "unanswered) time out, then recovery once the rules move.",
            _happy,
            pod_action="rollout",
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    """The scenario called `name`, or an InputError listing the known names."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise InputError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})") from None


def apply_scenario(name: str, ctx: ScenarioContext) -> EndpointSlice:
    """The slice that scenario `name` wants, keeping the baseline's name, labels and version."""
    return get_scenario(name).transform(ctx)


def endpoint(address: str, *, ready: bool | None = True, target_ref: str | None = None) -> Endpoint:
    """Shorthand used by transforms and tests."""
    return Endpoint(
        addresses=(address,), conditions=EndpointConditions(ready=ready), target_ref=target_ref
    )
