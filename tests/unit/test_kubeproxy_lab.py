"""Round trip on the real kernel: render -> iptables-restore -> iptables-save -> parse -> same tree.

This is what proves the renderer's output is valid restore input and that `saved_form` predicts,
byte for byte, how iptables-save prints it back. Root only; runs in its own throw-away netns.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import pytest
from test_kubeproxy_render import seed_objects, web_service  # same objects as the golden files

from svcwatch.kubeproxy.render import hook_rules, render
from svcwatch.kubeproxy.restore import parse_save, saved_form, service_tree, to_restore_text
from svcwatch.kubeproxy.rules import RuleSet
from svcwatch.model.scenario import ScenarioContext, apply_scenario
from svcwatch.model.service import Service
from svcwatch.netns import run_in


@pytest.fixture
def node_ns() -> Iterator[str]:
    from pyroute2 import netns  # heavy import, only for this root-only test

    name = f"svcwatch-t{secrets.token_hex(3)[:5]}-kp"
    netns.create(name)
    try:
        yield name
    finally:
        netns.remove(name)


def restore(ns: str, rules: RuleSet) -> None:
    run_in(
        ns,
        ["iptables-restore", "--noflush"],
        input=to_restore_text(rules),
        text=True,
        check=True,
        capture_output=True,
    )


def kernel(ns: str) -> RuleSet:
    saved = RuleSet()
    for table in ("filter", "nat"):
        out = run_in(
            ns, ["iptables-save", "-c", "-t", table], text=True, check=True, stdout=subprocess.PIPE
        )
        saved.tables.extend(parse_save(out.stdout).tables)
    return saved


def assert_kernel_matches(ns: str, service: Service, rendered: RuleSet) -> None:
    have, want = kernel(ns), saved_form(rendered)
    assert service_tree(have, service) == service_tree(want, service)
    for table in want.tables:  # every chain the sync wrote, printed exactly as predicted
        for chain in table.chains:
            assert [r.line() for r in have.table(table.name).rules_of(chain)] == [
                r.line() for r in table.rules_of(chain)
            ], chain


@pytest.mark.lab
def test_rendered_rules_read_back_identically_from_the_kernel(node_ns: str) -> None:
    socat, baseline = seed_objects()
    restore(node_ns, hook_rules())

    mixed = render(socat, [apply_scenario("mixed", ScenarioContext(baseline))])
    restore(node_ns, mixed)
    assert_kernel_matches(node_ns, socat, mixed)
    tree = service_tree(kernel(node_ns), socat)
    assert [r.probability for r in tree.chains["KUBE-SVC-6GHM6NOKDRAB634Q"]] == [None, 0.5, None]

    # A named multi-port Service with 3 endpoints replaces it; socat's chains are deleted as stale.
    web, web_slice = web_service()  # 3 ready endpoints and a not-ready one
    existing = kernel(node_ns).table("nat").chains
    three = render(web, [web_slice], stale_chains=existing)
    restore(node_ns, three)
    assert_kernel_matches(node_ns, web, three)
    assert [
        r.probability for r in service_tree(kernel(node_ns), web).all_rules() if r.probability
    ] == [0.33333333349, 0.5, 0.33333333349, 0.5]
    assert not [c for c in kernel(node_ns).table("nat").chains if c.endswith("6GHM6NOKDRAB634Q")]

    # No endpoints: only the filter REJECT rules remain.
    empty = render(
        socat,
        [apply_scenario("empty", ScenarioContext(baseline))],
        stale_chains=kernel(node_ns).table("nat").chains,
    )
    restore(node_ns, empty)
    assert_kernel_matches(node_ns, socat, empty)
    rejected = service_tree(kernel(node_ns), socat)
    assert rejected.chains == {} and [r.target for r in rejected.filter_rules] == [
        "REJECT",
        "REJECT",
    ]
    assert [r.line() for r in rejected.filter_rules][0].endswith(
        "-j REJECT --reject-with icmp-port-unreachable"
    )
