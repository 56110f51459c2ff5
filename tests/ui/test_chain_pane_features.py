"""The chain pane with the Service features beyond a NodePort: LB/external entry points and
ClientIP affinity, whose --rcheck rules must not be read as catch-alls (100 % then 0 %)."""

from __future__ import annotations

from textual.widgets import Static

from svcwatch.kubeproxy.rules import ChainTree, Rule
from tests.ui.conftest import make_app, settle
from tests.ui.fake_variants import StickyLoadBalancerSession

SIZE = (160, 50)


async def test_affinity_and_load_balancer_entry_points_show_with_even_shares() -> None:
    app = make_app(StickyLoadBalancerSession())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        text = str(app.main.chain_pane.query_one("#chain-body", Static).render())
        lines = text.splitlines()
        entry = [line for line in lines if "-> KUBE-FW-" in line]
        assert entry and "-d 192.168.97.240 --dport 12345" in entry[0]
        assert any("-d 192.168.97.50 " in line and "-> KUBE-EXT-" in line for line in lines)
        assert any(line.startswith("KUBE-FW-") for line in lines), (
            "the source-range chain is part of the walk"
        )
        assert any("-s 192.168.97.0/24" in line and "-> KUBE-EXT-" in line for line in lines)
        checks = [line for line in lines if "affinity: client seen in the last 600s" in line]
        assert len(checks) == 2 and not any("%" in line for line in checks)
        branches = [line for line in lines if "-> KUBE-SEP-" in line and "%" in line]
        assert len(branches) == 2 and all(" 50%" in line for line in branches)
        assert sum("affinity: remember client" in line for line in lines) == 2
        assert "traffic not accepted by KUBE-FW-" in text  # the filter table's firewall DROP
        fall_through = [line for line in lines if "will be dropped by KUBE-PROXY-FIREWALL" in line]
        assert len(fall_through) == 1 and "-> (no jump: falls through)" in fall_through[0]


async def test_no_ready_endpoint_shows_the_reject_rules_under_no_empty_heading() -> None:
    """Not ready / no endpoints: the nat table has nothing for the Service, so the pane starts
    with the filter table's REJECT, not with an "entry" heading over nothing."""
    reject = Rule(
        "KUBE-SERVICES",
        '-d 10.43.161.224/32 -p tcp -m comment --comment "default/socat has no endpoints" '
        "-m tcp --dport 12345 -j REJECT",
        target="REJECT",
    )
    app = make_app(StickyLoadBalancerSession())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        tree = ChainTree("default/socat", filter_rules=[reject])
        lines = app.main.chain_pane.render_tree(tree, fit=False).plain.splitlines()
        assert lines[0] == "filter table"
        assert "REJECT" in lines[1] and "entry" not in lines
