"""A Deployment rollout in the lab: a new socat pod (new ReplicaSet hash, new IP), the old one gone.

This is the race from the blog post author's earlier post: the new pod is up and the old pod's
process and namespace are gone before kube-proxy has moved the rule, so for a moment the rule DNATs
to an address nobody has. `retire_old=False` keeps the old pod serving until the caller retires it
after the rules moved -- what a preStop sleep buys in a real cluster.
"""

from __future__ import annotations

import re

from svcwatch.lab import pods
from svcwatch.lab.build import record_of
from svcwatch.lab.instances import LabRecord, PodRecord

POD_INDEX_RE = re.compile(r"-pod(\d+)$")


def next_pod_index(record: LabRecord) -> int:
    """A namespace index no pod of this lab has used yet in its current state."""
    indexes = [int(m.group(1)) for p in record.pods if (m := POD_INDEX_RE.search(p.netns))]
    return max(indexes, default=-1) + 1


def replace_echo_pod(record: LabRecord, retire_old: bool = True) -> PodRecord:
    """Start the next generation's socat pod and make it the echo pod; retire the old one."""
    spec = record.spec
    old = record.pod(record.echo_pod)
    record.generation += 1
    plan = spec.echo_pod(
        record.generation, next_pod_index(record), spec.next_free_ip({p.ip for p in record.pods})
    )
    node_ipr = pods.iproute_in(spec.node_ns)
    try:
        pods.add_pod(node_ipr, node_ipr.link_lookup(ifname="cni0")[0], spec, plan)
    finally:
        node_ipr.close()
    new = record_of(plan, record.generation)
    record.pods.append(new)
    new.echo = pods.wait_ready(pods.start_echo(spec, plan), plan.name)
    record.echo_pod = new.name
    if retire_old and old is not None:
        retire(record, old)
    return new


def retire(record: LabRecord, pod: PodRecord) -> None:
    """Remove a pod: its process, its veth and its namespace."""
    node_ipr = pods.iproute_in(record.spec.node_ns)
    try:
        pods.remove_pod(node_ipr, pod)
    finally:
        node_ipr.close()
    record.pods = [p for p in record.pods if p.name != pod.name]
