"""A whole node's kube-proxy ruleset (iptables mode) for many Services, from the one-Service render.

`render.render` writes a full sync for a node whose only Service is the given one. A node in a
real cluster carries thousands; benchmarks and tests that need one (the rules read must cost the
same on a node with 10 Services or 10,000) build it here: the fixed rules once, every Service's
own rules, and the closing rules (KUBE-SERVICES' jump to KUBE-NODEPORTS must stay last) at the end.
"""

from __future__ import annotations

from collections.abc import Sequence

from svcwatch.kubeproxy.render import ProxyConfig, hook_rules, render
from svcwatch.kubeproxy.rules import RuleSet, Table
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.service import Service


def render_node(
    services: Sequence[tuple[Service, Sequence[EndpointSlice]]],
    config: ProxyConfig = ProxyConfig(),  # noqa: B008 (frozen, so one shared default is safe)
) -> RuleSet:
    """A node's whole ruleset with all these Services (each with its slices): kube-proxy's jumps
    from the built-in chains (`hook_rules`), its fixed rules, every Service's rules, the closing
    rules. One `iptables-restore` (which replaces each table it names) loads it all."""
    fixed = render(Service("", "", ()), (), config)  # no ports: the fixed and closing rules only
    hooks = {t.name: t for t in hook_rules(config).tables}
    tables = []
    for base in fixed.tables:
        hook = hooks.pop(base.name, Table(base.name))
        known_rules, chains = set(base.rules), dict.fromkeys(base.chains)
        own = []
        for service, slices in services:
            table = render(service, slices, config).table(base.name)
            own += [r for r in table.rules if r not in known_rules]
            chains.update(dict.fromkeys(table.chains))
        cut = len(base.rules) if base.deleted_after is None else base.deleted_after
        rules = [*hook.rules, *base.rules[:cut], *own, *base.rules[cut:]]
        chains = {**dict.fromkeys(hook.chains), **chains}
        policies = {**hook.policies, **base.policies}
        tables.append(Table(base.name, list(chains), rules, policies=policies))
    return RuleSet([*tables, *hooks.values()])
