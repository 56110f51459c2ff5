"""`svcwatch --cluster -n NS svc/NAME`: any existing Service, watched read-only.

kmock is the API server (kopf watches it); the node agent's real commands run in a throw-away
"node" namespace through LocalTransport, loaded with the rules svcwatch's kube-proxy renderer
writes for the watched Service. Needs root for the namespace.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest

from svcwatch import netns
from svcwatch.cli import main
from svcwatch.cluster.faults import slice_from_body
from svcwatch.kubeproxy.chains import svc_chain
from svcwatch.kubeproxy.node_rules import render_node
from svcwatch.kubeproxy.restore import to_restore_text
from svcwatch.model.errors import InputError, SetupError
from svcwatch.model.events import ProbeEvent, RulesSynced, SliceChanged
from svcwatch.session.cluster_existing import ExistingServiceSession
from svcwatch.session.settings import ClusterSettings
from svcwatch.watch.convert import service_from_body
from tests.cluster import kmock_cluster
from tests.cluster.kmock_cluster import (
    MockCluster,
    kubelet_for_agents,
    make_pod,
    make_slice,
    wait_for,
)
from tests.helpers.local_transport import LocalTransport
from tests.helpers.namespaces import run_in
from tests.helpers.sinks import CollectingSink

pytestmark = [pytest.mark.cluster, pytest.mark.lab]
cluster = kmock_cluster.cluster  # the per-test kmock server fixture

NS, NODE = "shop", "k3s-node"
CONTROLLER = "endpointslice-controller.k8s.io"
CART = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "cart", "namespace": NS},
    "spec": {
        "type": "ClusterIP",
        "clusterIP": "10.43.7.7",
        "selector": {"app": "cart"},
        "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
    },
}


def endpoint(ip: str) -> dict[str, object]:
    return {"addresses": [ip], "conditions": {"ready": True}, "nodeName": NODE}


def seed_cart(cluster: MockCluster) -> list[dict[str, object]]:
    """Service shop/cart and two slices its controller wrote; the slices as stored."""
    api = cluster.api()
    api.create("Service", NS, CART)
    for i in (1, 2, 3):
        make_pod(api, NS, f"cart-{i}", {"app": "cart"}, node=NODE, ip=f"10.42.0.{10 + i}")
    return [
        make_slice(
            api,
            "cart-abc",
            CONTROLLER,
            [endpoint("10.42.0.11")],
            8080,
            service="cart",
            namespace=NS,
        ),
        make_slice(
            api,
            "cart-def",
            CONTROLLER,
            [endpoint("10.42.0.12")],
            8080,
            service="cart",
            namespace=NS,
        ),
    ]


@pytest.fixture
def node_ns(cluster: MockCluster) -> Iterator[str]:
    """The node: kube-proxy's rules for shop/cart (both slices) as svcwatch's renderer writes."""
    slices = [slice_from_body(b) for b in seed_cart(cluster)]
    rules = render_node([(service_from_body(CART), slices)])
    name = f"svcwatch-t{secrets.token_hex(3)}-node"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        text = to_restore_text(rules)
        run_in(name, ["iptables-restore"], input=text.encode(), check=True)
        # The endpoints' addresses live on the node too, with an echo server on the targetPort,
        # so a probe of the ClusterIP crosses the real DNAT rules and gets its echo.
        ip = ["ip", "-n", name]
        subprocess.run([*ip, "link", "add", "pods0", "type", "veth", "peer", "pods1"], check=True)
        for address in ("10.42.0.11", "10.42.0.12", "10.42.0.13"):
            subprocess.run([*ip, "addr", "add", f"{address}/32", "dev", "pods0"], check=True)
        for link in ("pods0", "pods1", "lo"):
            subprocess.run([*ip, "link", "set", link, "up"], check=True)
        # a ClusterIP is routed like any address (a default route), then DNAT'd in OUTPUT
        subprocess.run([*ip, "route", "add", "default", "dev", "pods0"], check=True)
        server = echo_server(name)
        yield name
        server.close()
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def echo_server(name: str) -> socket.socket:
    """An echo server on port 8080 in namespace `name`, one connection at a time."""
    server = netns.socket_in(name, socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 8080))
    server.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(conn.recv(100))

    threading.Thread(target=serve, daemon=True).start()
    return server


def watched_with_agents(
    cluster: MockCluster, node_ns: str, service: str
) -> tuple[ExistingServiceSession, threading.Event]:
    """An existing-Service session on `service` whose agents a kubelet stand-in runs in `node_ns`;
    set the returned event to stop that kubelet."""
    stop_kubelet = threading.Event()
    threading.Thread(
        target=kubelet_for_agents, args=(cluster, stop_kubelet, NS), daemon=True
    ).start()
    session = ExistingServiceSession(
        ClusterSettings(
            service=service,
            namespace=NS,
            kubeconfig=str(cluster.kubeconfig),
            transport_factory=lambda *_: LocalTransport(node_ns),
        )
    )
    return session, stop_kubelet


def test_an_existing_service_is_watched_read_only_over_all_its_slices(
    cluster: MockCluster, node_ns: str
) -> None:
    session, stop_kubelet = watched_with_agents(cluster, node_ns, "cart")
    sink = CollectingSink()
    try:
        session.start(sink)
        assert session.title.endswith("(shop/cart read-only)")
        assert {e.address for e in session.current_slice().endpoints} == {
            "10.42.0.11",
            "10.42.0.12",
        }
        wait_for(lambda: any(isinstance(e, RulesSynced) for e in sink.snapshot()), "rules read")
        wait_for(lambda: any(isinstance(e, ProbeEvent) for e in sink.snapshot()), "a probe")
        caps = session.capabilities()
        assert not caps.injects_faults and caps.scenarios is None
        assert caps.node_switching is None  # one node: nothing to switch
        assert caps.read_only is not None and "read-only" in caps.read_only
        with pytest.raises(InputError, match="shop/cart read-only: it did not create it"):
            session.request_scenario("wrong-port")
        # a third slice (a rollout, a scale-up) joins the view through the watch
        make_slice(
            cluster.api(),
            "cart-ghi",
            CONTROLLER,
            [endpoint("10.42.0.13")],
            8080,
            service="cart",
            namespace=NS,
        )
        wait_for(lambda: len(session.current_slice().endpoints) == 3, "the third slice merged", 20)
    finally:
        session.stop()
        stop_kubelet.set()
    events = sink.snapshot()
    synced = next(e for e in events if isinstance(e, RulesSynced))
    assert svc_chain("shop/cart", "tcp") in synced.added
    # ClusterIP only: probed from a probe pod inside the cluster, through the node's DNAT
    probes = [e for e in events if isinstance(e, ProbeEvent)]
    assert probes and all((e.dst, e.dport) == ("10.43.7.7", 80) for e in probes)
    assert any(e.ok and e.nbytes == len(b"hello") for e in probes), probes[:3]
    probe_pods = {"app.kubernetes.io/component": "probe"}
    assert cluster.requests("POST", "/pods") and cluster.api().list("Pod", NS, probe_pods) == []
    assert sum(isinstance(e, SliceChanged) for e in events) >= 3
    for kind in ("/endpointslices", "/services"):  # read-only: svcwatch wrote nothing of them
        assert cluster.requests("PATCH", kind) == cluster.requests("PUT", kind) == []
    assert cluster.stored("pods", NS, f"svcwatch-agent-{NODE}") is None  # agent deleted


def test_a_missing_service_is_one_line_and_exit_2(
    cluster: MockCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", "--cluster", "--kubeconfig", str(cluster.kubeconfig), "-n", NS, "svc/nope"]
    with pytest.raises(SystemExit) as exited:
        main([*args, "--plain", "-d", "1"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "svcwatch: error: Service shop/nope does not exist (see `kubectl get services -n shop`)"
    )


async def test_a_fault_key_on_a_read_only_service_says_why_and_changes_nothing(
    cluster: MockCluster, node_ns: str
) -> None:
    from tests.ui.conftest import make_app, settle

    session, stop_kubelet = watched_with_agents(cluster, node_ns, "cart")
    app = make_app(session)
    try:
        async with app.run_test(size=(140, 44)) as pilot:
            for _ in range(400):  # the session starts in a worker: agents, watch, first read
                await settle(app, pilot, rounds=1)
                if app.session_ready:
                    break
            assert app.session_ready
            await pilot.press("2")  # wrong-port: a fault
            await settle(app, pilot)
            assert [n.message for n in app._notifications][-1] == (
                "svcwatch watches shop/cart read-only: it did not create it (pass --take-over "
                "to break its first EndpointSlice, restored on exit)"
            )
            await pilot.press("q")
            await settle(app, pilot)
    finally:
        stop_kubelet.set()
    assert cluster.requests("PATCH", "/endpointslices") == []


def test_the_chain_pane_switches_between_the_endpoints_nodes(
    cluster: MockCluster, node_ns: str
) -> None:
    from svcwatch.ui.widgets.chain_pane import ChainPane

    other = {"addresses": ["10.42.1.20"], "conditions": {"ready": True}, "nodeName": "k3s-node-2"}
    make_slice(cluster.api(), "cart-xyz", CONTROLLER, [other], 8080, service="cart", namespace=NS)
    session, stop_kubelet = watched_with_agents(cluster, node_ns, "cart")
    try:
        session.start(CollectingSink())
        switching = session.capabilities().node_switching
        assert switching is not None
        assert switching.nodes_watched() == [NODE, "k3s-node-2"]
        wait_for(lambda: session.read_chain().node == NODE, "the first node's rules")
        assert "· node k3s-node ·" in ChainPane.title_for(session.read_chain())
        assert switching.show_next_node() == "k3s-node-2"
        wait_for(lambda: session.read_chain().node == "k3s-node-2", "the second node's rules")
        assert svc_chain("shop/cart", "tcp") in session.read_chain().chains
        assert switching.show_next_node() == NODE  # and round again
    finally:
        session.stop()
        stop_kubelet.set()
    assert cluster.stored("pods", NS, "svcwatch-agent-k3s-node-2") is None


def test_no_pod_is_started_in_kube_system(cluster: MockCluster) -> None:
    api = cluster.api()
    api.create(
        "Service", "kube-system", {**CART, "metadata": {"name": "dns", "namespace": "kube-system"}}
    )
    session = ExistingServiceSession(
        ClusterSettings(service="dns", namespace="kube-system", kubeconfig=str(cluster.kubeconfig))
    )
    with pytest.raises(
        SetupError, match="svcwatch starts no pods in kube-system: pass --agent-namespace"
    ):
        session.start(CollectingSink())
    session.stop()
    assert cluster.requests("POST", "/pods") == []


def test_svcwatchs_own_demo_service_keeps_its_faults(cluster: MockCluster, node_ns: str) -> None:
    """svc/NAME on a Service `cluster up` created: the keys patch svcwatch's own slice only."""
    api = cluster.api()
    labels = {"app.kubernetes.io/managed-by": "svcwatch"}
    api.create(
        "Service", NS, {**CART, "metadata": {"name": "demo", "namespace": NS, "labels": labels}}
    )
    ours = make_slice(
        api, "demo", "svcwatch", [endpoint("10.42.0.11")], 8080, service="demo", namespace=NS
    )
    make_slice(
        api, "demo-ctrl", CONTROLLER, [endpoint("10.42.0.12")], 8080, service="demo", namespace=NS
    )
    session, stop_kubelet = watched_with_agents(cluster, node_ns, "demo")
    try:
        session.start(CollectingSink())
        assert session.capabilities().injects_faults
        assert not session.title.endswith("read-only)")
        session.request_scenario("wrong-port")
        wait_for(
            lambda: (
                (cluster.stored("endpointslices", NS, "demo") or {})
                .get("ports", [{}])[0]
                .get("port")
                == 8081
            ),
            "svcwatch's slice patched to the wrong port",
        )
    finally:
        session.stop()
        stop_kubelet.set()
    patched = {r.url.path.rsplit("/", 1)[-1] for r in cluster.requests("PATCH", "/endpointslices/")}
    assert patched == {"demo"}  # never the controller's slice
    assert cluster.stored("endpointslices", NS, "demo") == ours  # restored on stop
