"""The renderer writes what kube-proxy (iptables mode, k3s defaults) writes, byte for byte.

Golden files are the contract: tests/data/iptables/*.rules. After a deliberate change, rewrite
them with SVCWATCH_UPDATE_GOLDEN=1 and review the diff line by line.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from svcwatch.kubeproxy.render import ProxyConfig, hook_rules, render
from svcwatch.kubeproxy.restore import saved_form, to_restore_text
from svcwatch.model.endpointslice import Endpoint, EndpointConditions, EndpointPort, EndpointSlice
from svcwatch.model.manifest import collect, parse_documents
from svcwatch.model.scenario import ScenarioContext, apply_scenario
from svcwatch.model.service import Service, ServicePort

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "iptables"
SEED_CLUSTER_IP = "10.43.161.224"
LABEL = {"kubernetes.io/service-name": "web"}


def seed_objects() -> tuple[Service, EndpointSlice]:
    objs = collect(parse_documents((ROOT / "manifests" / "socat.yaml").read_text(), "socat.yaml"))
    service = replace(objs.services[0], cluster_ip=SEED_CLUSTER_IP)
    return service, objs.slices_for(service)[0]


def seed_rules(scenario: str, config: ProxyConfig | None = None) -> str:
    service, baseline = seed_objects()
    slice_ = apply_scenario(scenario, ScenarioContext(baseline))
    return to_restore_text(render(service, [slice_], config or ProxyConfig()))


def web_service() -> tuple[Service, EndpointSlice]:
    """A named, multi-port Service with 3 ready endpoints and one that is not ready."""
    service = Service(
        "shop",
        "web",
        (ServicePort(80, name="http", node_port=30080), ServicePort(9100, name="metrics")),
        type="NodePort",
        cluster_ip="10.43.7.80",
    )
    ready = [
        Endpoint((ip,), EndpointConditions(ready=True))
        for ip in ("10.42.0.9", "10.42.0.10", "10.42.0.11")
    ]
    not_ready = Endpoint(("10.42.0.12",), EndpointConditions(ready=False, serving=False))
    ports = (EndpointPort(8080, "http"), EndpointPort(9100, "metrics"))
    return service, EndpointSlice("shop", "web-abc", (*ready, not_ready), ports, labels=LABEL)


def check_golden(name: str, text: str) -> None:
    path = DATA / name
    if os.environ.get("SVCWATCH_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("scenario", ["happy", "wrong-port", "wrong-ip", "mixed"])
def test_seed_scenarios_match_golden_files(scenario: str) -> None:
    check_golden(f"{scenario}.rules", seed_rules(scenario))


def test_named_three_endpoint_service_matches_golden_file() -> None:
    service, slice_ = web_service()
    check_golden("named-3ep.rules", to_restore_text(render(service, [slice_])))


def saved_lines(scenario: str) -> list[str]:
    service, baseline = seed_objects()
    rules = saved_form(render(service, [apply_scenario(scenario, ScenarioContext(baseline))]))
    return to_restore_text(rules).splitlines()


@pytest.mark.parametrize(
    ("scenario", "seed_line"),
    [
        (
            "happy",
            '-A KUBE-NODEPORTS -p tcp -m comment --comment "default/socat" -m tcp --dport 31234 '
            "-j KUBE-EXT-6GHM6NOKDRAB634Q",
        ),
        (
            "happy",
            '-A KUBE-SEP-STAYFALK6DPGANUO -p tcp -m comment --comment "default/socat" -m tcp '
            "-j DNAT --to-destination 10.42.0.142:12345",
        ),
        (
            "wrong-port",
            '-A KUBE-SEP-XVRNL33HWWUQHJC7 -p tcp -m comment --comment "default/socat" -m tcp '
            "-j DNAT --to-destination 10.42.0.142:12346",
        ),
        (
            "wrong-ip",
            '-A KUBE-SEP-L7Q23S57UQHHMQS4 -p tcp -m comment --comment "default/socat" -m tcp '
            "-j DNAT --to-destination 10.42.0.143:12345",
        ),
        (
            "mixed",
            '-A KUBE-SVC-6GHM6NOKDRAB634Q -m comment --comment "default/socat -> '
            '10.42.0.142:12345" '
            "-m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-STAYFALK6DPGANUO",
        ),
        (
            "mixed",
            '-A KUBE-SVC-6GHM6NOKDRAB634Q -m comment --comment "default/socat -> '
            '10.42.0.143:12345" '
            "-j KUBE-SEP-L7Q23S57UQHHMQS4",
        ),
    ],
)
def test_seed_post_rule_lines_appear_verbatim_once_saved(scenario: str, seed_line: str) -> None:
    assert seed_line in saved_lines(scenario)


def test_kube_proxy_writes_its_own_token_order() -> None:
    lines = seed_rules("happy").splitlines()
    assert (
        "-A KUBE-SEP-STAYFALK6DPGANUO -m comment --comment default/socat -m tcp -p tcp "
        "-j DNAT --to-destination 10.42.0.142:12345"
    ) in lines
    assert (
        '-A KUBE-SVC-6GHM6NOKDRAB634Q -m comment --comment "default/socat cluster IP" -m tcp -p '
        "tcp "
        "-d 10.43.161.224 --dport 12345 ! -s 10.42.0.0/16 -j KUBE-MARK-MASQ"
    ) in lines
    assert "-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000" in lines
    assert lines[-2] == (
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must '
        'be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS'
    )
    assert lines.index("*filter") < lines.index("*nat")


def test_endpoints_are_sorted_as_ip_port_strings() -> None:
    service, slice_ = web_service()
    text = to_restore_text(render(service, [slice_]))
    order = [text.index(f'"shop/web:http -> 10.42.0.{n}:8080"') for n in (10, 11, 9)]
    assert order == sorted(order)
    assert "10.42.0.12" not in text  # neither ready nor serving: no KUBE-SEP chain


def test_probability_chain_is_one_over_remaining() -> None:
    service, slice_ = web_service()
    svc_rules = [
        r
        for r in render(service, [slice_]).table("nat").rules
        if "shop/web:http ->" in (r.comment or "")
    ]
    assert [r.probability for r in svc_rules] == [0.3333333333, 0.5, None]
    assert "--probability 0.3333333333 " in svc_rules[0].spec


def endpoints_with(*conditions: EndpointConditions) -> EndpointSlice:
    eps = tuple(Endpoint((f"10.42.0.{20 + i}",), c) for i, c in enumerate(conditions))
    return EndpointSlice(
        "shop",
        "web-abc",
        eps,
        (EndpointPort(8080, "http"), EndpointPort(9100, "metrics")),
        labels=LABEL,
    )


def sep_targets(slice_: EndpointSlice) -> list[str]:
    service, _ = web_service()
    nat = render(service, [slice_]).table("nat")
    return [
        r.dnat_to or ""
        for r in nat.rules
        if r.target == "DNAT" and r.dnat_to and r.dnat_to.endswith(":8080")
    ]


def test_ready_endpoints_win_over_terminating_ones() -> None:
    slice_ = endpoints_with(
        EndpointConditions(ready=True),
        EndpointConditions(ready=False, serving=True, terminating=True),
    )
    assert sep_targets(slice_) == ["10.42.0.20:8080"]


def test_serving_terminating_endpoints_are_the_fallback() -> None:
    slice_ = endpoints_with(
        EndpointConditions(ready=False, serving=True, terminating=True),
        EndpointConditions(ready=False, serving=False, terminating=True),
    )
    assert sep_targets(slice_) == ["10.42.0.20:8080"]


def test_missing_conditions_mean_ready() -> None:
    assert sep_targets(endpoints_with(EndpointConditions())) == ["10.42.0.20:8080"]


def test_not_ready_and_not_serving_leaves_only_reject_rules() -> None:
    service, _ = web_service()
    slice_ = endpoints_with(EndpointConditions(ready=False, serving=False))
    rules = render(service, [slice_])
    assert not [
        c
        for c in rules.table("nat").chains
        if c.startswith(("KUBE-SVC-", "KUBE-SEP-", "KUBE-EXT-"))
    ]
    rejects = [r.line() for r in rules.table("filter").rules if r.target == "REJECT"]
    assert rejects == [
        '-A KUBE-SERVICES -m comment --comment "shop/web:http has no endpoints" -m tcp -p tcp -d '
        "10.43.7.80 "
        "--dport 80 -j REJECT",
        '-A KUBE-EXTERNAL-SERVICES -m comment --comment "shop/web:http has no endpoints" -m '
        "addrtype "
        "--dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT",
        '-A KUBE-SERVICES -m comment --comment "shop/web:metrics has no endpoints" -m tcp -p tcp '
        "-d 10.43.7.80 "
        "--dport 9100 -j REJECT",
    ]


def test_zero_endpoints_seed_scenario_renders_reject_only() -> None:
    text = seed_rules("empty")
    assert "KUBE-SVC-" not in text and "KUBE-SEP-" not in text and "KUBE-EXT-" not in text
    assert "-A KUBE-NODEPORTS" not in text
    assert '--comment "default/socat has no endpoints"' in text


def test_slice_ports_match_by_name_and_skip_nameless_or_portless_ports() -> None:
    service, slice_ = web_service()
    odd = replace(
        slice_,
        ports=(EndpointPort(8080, None), EndpointPort(None, "http"), EndpointPort(9100, "metrics")),
    )
    rules = render(service, [odd])
    comments = {r.comment for r in rules.table("filter").rules}
    assert "shop/web:http has no endpoints" in comments  # its only ports were unusable
    assert any(r.dnat_to == "10.42.0.9:9100" for r in rules.table("nat").rules)


def test_only_the_first_address_counts_and_fqdn_slices_are_ignored() -> None:
    service, slice_ = web_service()
    two = replace(slice_, endpoints=(Endpoint(("10.42.0.9", "10.42.0.99")),))
    fqdn = replace(
        slice_, name="web-fqdn", address_type="FQDN", endpoints=(Endpoint(("example.com",)),)
    )
    text = to_restore_text(render(service, [two, fqdn]))
    assert "10.42.0.9:8080" in text and "10.42.0.99" not in text and "example.com" not in text


def test_duplicate_endpoints_across_slices_collapse() -> None:
    service, slice_ = web_service()
    copy = replace(slice_, name="web-def")
    assert to_restore_text(render(service, [slice_, copy])) == to_restore_text(
        render(service, [slice_])
    )


def test_headless_service_gets_no_service_rules() -> None:
    service, slice_ = web_service()
    text = to_restore_text(render(replace(service, cluster_ip=None), [slice_]))
    assert "shop/web" not in text and "-A KUBE-MARK-MASQ" in text


def test_stale_chains_are_declared_then_deleted_before_the_last_rule() -> None:
    service, baseline = seed_objects()
    wanted = "KUBE-SEP-STAYFALK6DPGANUO"
    text = to_restore_text(
        render(
            service, [baseline], stale_chains=["KUBE-SEP-XVRNL33HWWUQHJC7", wanted, "FLANNEL-FWD"]
        )
    )
    lines = text.splitlines()
    assert ":KUBE-SEP-XVRNL33HWWUQHJC7 - [0:0]" in lines and "-X KUBE-SEP-XVRNL33HWWUQHJC7" in lines
    assert (
        f"-X {wanted}" not in lines and "-X FLANNEL-FWD" not in lines
    )  # in use / not kube-proxy's
    assert (
        lines.index("-X KUBE-SEP-XVRNL33HWWUQHJC7") == len(lines) - 3
    )  # then the nodeports rule, COMMIT


def test_external_traffic_policy_local() -> None:
    service, slice_ = web_service()
    local = replace(
        slice_,
        endpoints=(
            Endpoint(("10.42.0.9",), node_name="node-a"),
            Endpoint(("10.42.0.10",), node_name="node-b"),
        ),
    )
    service = replace(service, external_traffic_policy="Local")
    nat = render(service, [local], ProxyConfig(node_name="node-a")).table("nat")
    ext = [r.line() for r in nat.rules if r.chain.startswith("KUBE-EXT-")]
    assert [line.split(" -j ")[1] for line in ext][-1].startswith("KUBE-SVL-")
    assert (
        '-m comment --comment "pod traffic for shop/web:http external destinations" -s 10.42.0.0/16'
        in ext[0]
    )
    svl = [r for r in nat.rules if r.chain.startswith("KUBE-SVL-")]
    assert [r.comment for r in svl] == ["shop/web:http -> 10.42.0.9:8080"]
    filt = render(service, [local], ProxyConfig(node_name="node-c")).table("filter")
    drops = [
        r.comment for r in filt.rules if r.target == "DROP" and r.chain == "KUBE-EXTERNAL-SERVICES"
    ]
    assert drops == ["shop/web:http has no local endpoints"]


def test_config_flags_change_exactly_their_rules() -> None:
    default = seed_rules("happy")
    no_localhost = seed_rules("happy", ProxyConfig(localhost_nodeports=False))
    assert "-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS" in no_localhost
    assert "KUBE-FIREWALL" in default and "KUBE-FIREWALL" not in no_localhost
    nfacct = seed_rules("happy", ProxyConfig(version="1.31"))
    assert (
        "-A KUBE-NODEPORTS -m comment --comment default/socat -m tcp -p tcp -d 127.0.0.0/8 "
        "--dport 31234 "
        "-m nfacct --nfacct-name localhost_nps_accepted_pkts -j KUBE-EXT-6GHM6NOKDRAB634Q"
    ) in nfacct
    assert "nfacct" not in default
    assert "--random-fully" not in seed_rules("happy", ProxyConfig(random_fully=False))
    assert "0x00008000" in seed_rules("happy", ProxyConfig(masquerade_bit=15))


def test_hook_rules_jump_into_kube_proxy_chains() -> None:
    text = to_restore_text(hook_rules())
    assert (
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' in text
    )
    assert (
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING'
        in text
    )
    assert text.count(":KUBE-PROXY-CANARY - [0:0]") == 3
    inputs = [r.target for r in hook_rules().table("filter").rules if r.chain == "INPUT"]
    assert inputs == [
        "KUBE-PROXY-FIREWALL",
        "KUBE-NODEPORTS",
        "KUBE-EXTERNAL-SERVICES",
        "KUBE-FIREWALL",
    ]
