"""ExecTransport against a conformant pods/exec websocket (tests/cluster/exec_server.py) in front
of kmock: v4 and v5 framing, the error channel's Status (Success, NonZeroExitCode, InternalError
with no exit code), TLS with client certificates, slow upgrades racing REST calls, a stream closed
by us (silent) and one dropped by the server (StreamDropped). The commands really run on this
host."""

from __future__ import annotations

import shutil
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from svcwatch.cluster.agent import NodeAgent
from svcwatch.cluster.podexec import ExecTransport, StreamDropped
from svcwatch.model.errors import SetupError
from svcwatch.watch.convert import service_from_body
from tests.cluster import kmock_cluster
from tests.cluster.exec_server import V4, V5, make_tls
from tests.cluster.kmock_cluster import MockCluster, running_cluster, start_agent_pod, wait_for

pytestmark = pytest.mark.cluster
cluster = kmock_cluster.cluster  # the per-test kmock server fixture

IMAGE = "nicolaka/netshoot:v0.13"
SERVICE = service_from_body(
    {
        "metadata": {"name": "socat", "namespace": "default"},
        "spec": {
            "type": "NodePort",
            "clusterIP": "10.43.161.224",
            "ports": [{"port": 12345, "nodePort": 31234}],
        },
    }
)
LOUD_CHILD = "echo listening on any >&2; while :; do echo tick; sleep 0.05; done"


def transport(cluster: MockCluster, node: str = "node-1") -> ExecTransport:
    api = cluster.api()
    pod = start_agent_pod(api, node, IMAGE)
    return ExecTransport(api, "default", pod, node, IMAGE)


@pytest.mark.parametrize("protocol", [V5, V4])
def test_a_command_runs_over_either_protocol(cluster: MockCluster, protocol: str) -> None:
    assert cluster.exec_api is not None
    cluster.exec_api.protocols = (protocol,)
    assert transport(cluster).run(["echo", "hello", "node"]) == "hello node\n"
    (record,) = cluster.exec_api.execs
    assert record.protocol == protocol
    assert record.argv == ["echo", "hello", "node"] and record.container == "agent"
    assert record.status == {"metadata": {}, "status": "Success"}


def test_a_nonzero_exit_names_the_command_node_code_and_stderr(cluster: MockCluster) -> None:
    with pytest.raises(SetupError, match=r"^sh failed on node node-1 \(exit 3\): no such table$"):
        transport(cluster).run(["sh", "-c", "echo no such table >&2; exit 3"])


def test_a_binary_missing_from_the_image_is_named_with_the_image(cluster: MockCluster) -> None:
    assert cluster.exec_api is not None
    cluster.exec_api.missing = {"tcpdump"}
    with pytest.raises(
        SetupError,
        match=r"^tcpdump is not in the agent image nicolaka/netshoot:v0\.13 on node node-1: "
        r"pass --agent-image",
    ):
        transport(cluster).run(["tcpdump", "--version"])
    assert cluster.exec_api.execs[0].status is not None
    assert cluster.exec_api.execs[0].status["reason"] == "InternalError"  # no exit code at all


def image_without(tmp_path: Path, *tools: str) -> Callable[[str, str, Sequence[str]], list[str]]:
    """A runner whose "image" has only `tools` on its PATH (symlinks to this host's)."""
    bin_dir = tmp_path / "image-bin"
    bin_dir.mkdir()
    for tool in tools:
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    return lambda _ns, _pod, argv: ["env", f"PATH={bin_dir}", *argv]


def test_rules_name_every_missing_tool_and_the_image(cluster: MockCluster, tmp_path: Path) -> None:
    assert cluster.exec_api is not None
    cluster.exec_api.runner = image_without(tmp_path, "sh", "grep", "head")
    with pytest.raises(
        SetupError,
        match=r"^none of iptables, iptables-nft, iptables-legacy, nft is in the agent image "
        r"nicolaka/netshoot:v0\.13 on node node-1: pass --agent-image with an image that has "
        r"iptables or nft$",
    ):
        NodeAgent("node-1", transport(cluster)).read_rules(SERVICE)
    (detect,) = cluster.exec_api.execs
    assert detect.argv[:2] == ["sh", "-c"] and detect.status is not None
    assert detect.status["status"] == "Success"


def test_an_image_without_a_shell_is_named(cluster: MockCluster) -> None:
    assert cluster.exec_api is not None
    cluster.exec_api.missing = {"sh"}
    with pytest.raises(SetupError, match=r"^sh is not in the agent image nicolaka/netshoot:v0\.13"):
        NodeAgent("node-1", transport(cluster)).read_rules(SERVICE)


def test_tls_with_a_client_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tls = make_tls(tmp_path / "pki")
    with running_cluster(tmp_path, monkeypatch, tls=tls) as mock:
        assert mock.url.startswith("https://127.0.0.1:")
        assert transport(mock).run(["echo", "over tls"]) == "over tls\n"
        no_certificate = ssl.create_default_context(cafile=str(tls.ca))
        with pytest.raises(OSError):  # the server asks for a client certificate
            urllib.request.urlopen(f"{mock.url}/api/v1/namespaces", context=no_certificate)


def test_rest_calls_while_execs_upgrade_slowly_never_fail(cluster: MockCluster) -> None:
    """stream() swaps the client's request method during the upgrade; other threads must not see
    it: REST reads from two threads while two threads exec, with a 50-100 ms upgrade delay."""
    assert cluster.exec_api is not None
    cluster.exec_api.upgrade_delay = (0.05, 0.1)
    shared = transport(cluster)
    api, failures, done = shared.api, [], threading.Event()
    counts = {"rest": 0, "exec": 0}

    def guarded(action: Callable[[], object], kind: str) -> None:
        while not done.is_set():
            try:
                action()
                counts[kind] += 1
            except Exception as exc:
                failures.append(f"{kind}: {exc}")

    threads = [
        threading.Thread(target=guarded, args=(lambda: shared.run(["true"]), "exec")),
        threading.Thread(target=guarded, args=(lambda: shared.run(["echo", "x"]), "exec")),
        threading.Thread(
            target=guarded, args=(lambda: api.read("Pod", "default", shared.pod), "rest")
        ),
        threading.Thread(target=guarded, args=(lambda: api.list("Pod", "default"), "rest")),
    ]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    done.set()
    for thread in threads:
        thread.join(timeout=10)
    assert failures == []
    assert counts["exec"] >= 10 and counts["rest"] >= 20
    assert api.read("Pod", "default", shared.pod)["metadata"]["name"] == shared.pod
    api.close()


def test_closing_a_stream_while_it_is_read_is_silent_and_stops_the_command(
    cluster: MockCluster,
) -> None:
    assert cluster.exec_api is not None
    stream = transport(cluster).open_stream(["sh", "-c", LOUD_CHILD])
    assert stream.wait_for_stderr("listening on", 5)  # type: ignore[attr-defined]
    got, errors = bytearray(), []

    def read() -> None:
        try:
            while chunk := stream.read(4096):
                got.extend(chunk)
        except Exception as exc:
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    wait_for(lambda: got.count(b"tick") >= 3, "three ticks")
    stream.close()
    reader.join(timeout=5)
    assert not reader.is_alive() and errors == []
    (record,) = cluster.exec_api.execs
    wait_for(lambda: record.client_closed, "the server stop the command")


def test_a_stream_the_server_drops_raises_stream_dropped(cluster: MockCluster) -> None:
    assert cluster.exec_api is not None
    api = cluster.exec_api
    stream = transport(cluster).open_stream(["sh", "-c", LOUD_CHILD])
    assert stream.read(4096)

    def abort(_handler: object) -> None:
        api.abort()

    cluster.on_loop(abort)
    with pytest.raises(StreamDropped, match="exec stream on node node-1 dropped"):
        while stream.read(4096):
            pass
    stream.close()


def test_a_command_that_ends_is_the_end_of_its_stream(cluster: MockCluster) -> None:
    node = transport(cluster)
    stream = node.open_stream(["sh", "-c", "printf 'abc'; exit 0"])
    assert stream.read() == b"abc"
    failing = node.open_stream(["sh", "-c", "echo bad filter >&2; exit 1"])
    with pytest.raises(SetupError, match=r"sh failed on node node-1 \(exit 1\): bad filter"):
        failing.read()
