"""kube-proxy's nftables mode: its chain names, and one Service's rules read from `nft list`.

In nftables mode (beta in 1.31, GA in 1.33) kube-proxy keeps everything in `table ip kube-proxy`
and `iptables-save` shows none of it. Dispatch is by verdict maps, not rule lists: `service-ips`
(`ip . proto . port : goto service-…`), `service-nodeports` (`proto . port : goto external-…`),
`firewall-ips`, and `no-endpoint-services` / `no-endpoint-nodeports` (reject or drop). Chains are
named `<prefix><hash>-ns/svc/proto/port` (endpoints add `__ip/port`), where <hash> is the first 8
base32 characters of sha256 of the rest of the name, exactly as `hashAndTruncate` in upstream
pkg/proxy/nftables/proxier.go computes it.

Load balancing is `numgen random mod N vmap { 0 : goto endpoint-…, 1 : … }` (kube-proxy 1.31 to
1.35) or, since 1.36, `dnat ip to numgen random mod N map { 0 : ip . port, … }` with no endpoint
chains at all. Both read into the dashboard's `ChainTree`: one `Rule` per branch of the random map,
each with `probability` = 1/N. That is a SHARE (every branch gets 1/N of new connections), not
iptables' conditional `--probability` (1/N, then 1/(N-1), …, then 1). kube-proxy adds no
`counter` statements in this mode, so packets/bytes stay 0 unless someone added counters.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field

from svcwatch.kubeproxy.chains import join_host_port, proto_of
from svcwatch.kubeproxy.rules import ChainTree, Rule
from svcwatch.model.errors import InputError
from svcwatch.model.service import Service, ServicePort

__all__ = [
    "BACKEND",
    "NftTable",
    "endpoint_chain",
    "external_chain",
    "firewall_chain",
    "hash_and_truncate",
    "is_nft_mode",
    "local_chain",
    "nft_chain_hash",
    "nft_share_of",
    "parse_nft_table",
    "port_chain_base",
    "service_chain",
    "service_tree_nft",
]

BACKEND = "nftables"
TABLE_FAMILY, TABLE_NAME = "ip", "kube-proxy"
SERVICE_PREFIX = "service-"  # Cluster traffic policy: load-balances over all usable endpoints
LOCAL_PREFIX = "local-"  # Local traffic policy: this node's endpoints only
EXTERNAL_PREFIX = "external-"  # NodePort / LoadBalancer / externalIP traffic enters here
FIREWALL_PREFIX = "firewall-"  # loadBalancerSourceRanges
ENDPOINT_PREFIX = "endpoint-"  # one endpoint: hairpin masquerade + DNAT
REJECT_CHAIN = "reject-chain"  # the verdict of a no-endpoint element that rejects
# knftables.NameLengthMax (256) minus the longest prefix (16): longer bases end in "...".
_BASE_LENGTH_MAX = 256 - 16
# Dispatch maps in the order a new packet meets them: firewall-check (filter, prerouting -110),
# services (nat, prerouting -100); then the no-endpoint maps in the filter input/forward/output.
_ENTRY_MAPS = ("firewall-ips", "service-ips", "service-nodeports")
_NO_ENDPOINT_MAPS = ("no-endpoint-services", "no-endpoint-nodeports")

_TABLE_LINE = re.compile(rf"^\s*table {TABLE_FAMILY} {TABLE_NAME}(?:\s*\{{)?\s*$", re.M)
_TABLE_OPEN = re.compile(rf"^\s*table {TABLE_FAMILY} {TABLE_NAME}\s*\{{\s*$", re.M)
_BLOCK_START = re.compile(r"^(chain|map|set)\s+(\S+)\s*\{$")
_HANDLE = re.compile(r"\s+# handle \d+$")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_COUNTER = re.compile(r"\bcounter packets (\d+) bytes (\d+)")
_COMMENT = re.compile(r'\s*\bcomment "((?:[^"\\]|\\.)*)"')
_VERDICT = re.compile(r"\b(?:goto|jump)\s+(\S+)")
_NUMGEN_VMAP = re.compile(r"\bnumgen random mod (\d+) vmap \{(.*)\}")
_NUMGEN_DNAT = re.compile(r"\bdnat (?:ip6? )?to numgen random mod (\d+) map \{(.*)\}")
_DNAT = re.compile(r"\bdnat (?:ip6? )?to (\S+)")
_WORD_VERDICTS = ("reject", "drop", "accept", "return", "masquerade")
_DURATION = re.compile(r"(\d+)(ms|d|h|m|s)")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0}
_AFFINITY_SET = re.compile(r"@(affinity-\S+)")


# --- chain names -----------------------------------------------------------------------------


def nft_chain_hash(name: str) -> str:
    """The first 8 characters of base32(sha256(name)): the hash part of an nftables chain name."""
    return base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()[:8]


def hash_and_truncate(name: str) -> str:
    """`HASH-name`, cut to 240 characters with a trailing "..." (upstream `hashAndTruncate`)."""
    based = f"{nft_chain_hash(name)}-{name}"
    return based if len(based) <= _BASE_LENGTH_MAX else based[: _BASE_LENGTH_MAX - 3] + "..."


def port_chain_base(service: Service, port: ServicePort) -> str:
    """`HASH-ns/svc/proto/portname` (`servicePortChainNameBase`); unnamed port -> trailing `/`."""
    return hash_and_truncate(f"{service.namespace}/{service.name}/{proto_of(port)}/{port.name}")


def service_chain(service: Service, port: ServicePort) -> str:
    return SERVICE_PREFIX + port_chain_base(service, port)


def local_chain(service: Service, port: ServicePort) -> str:
    return LOCAL_PREFIX + port_chain_base(service, port)


def external_chain(service: Service, port: ServicePort) -> str:
    return EXTERNAL_PREFIX + port_chain_base(service, port)


def firewall_chain(service: Service, port: ServicePort) -> str:
    return FIREWALL_PREFIX + port_chain_base(service, port)


def endpoint_chain(service: Service, port: ServicePort, ip: str, target_port: int) -> str:
    """`endpoint-HASH-ns/svc/proto/portname__ip/port`; an IPv6 address's colons become dots."""
    base = f"{service.namespace}/{service.name}/{proto_of(port)}/{port.name}"
    return ENDPOINT_PREFIX + hash_and_truncate(f"{base}__{ip.replace(':', '.')}/{target_port}")


def _port_chains(service: Service, port: ServicePort) -> list[str]:
    """A port's own chains in the order a packet may walk them."""
    makers = (firewall_chain, external_chain, service_chain, local_chain)
    return [make(service, port) for make in makers]


# --- the listing -----------------------------------------------------------------------------


def is_nft_mode(nft_list_ruleset_text: str) -> bool:
    """Whether `nft list ruleset` (or `nft list tables`) shows `table ip kube-proxy`."""
    return _TABLE_LINE.search(nft_list_ruleset_text) is not None


@dataclass(slots=True)
class NftTable:
    """kube-proxy's table as listed: chains' rule lines and sets'/maps' element texts, in order."""

    chains: dict[str, list[str]] = field(default_factory=dict)
    maps: dict[str, list[str]] = field(default_factory=dict)
    sets: dict[str, list[str]] = field(default_factory=dict)
    timeouts: dict[str, int] = field(default_factory=dict)  # set -> its `timeout`, in seconds


def _depth_change(line: str) -> int:
    bare = _QUOTED.sub('""', line)
    return bare.count("{") - bare.count("}")


def _table_lines(text: str) -> list[str]:
    """The lines inside `table ip kube-proxy { … }`, whatever other tables the listing has."""
    found = _TABLE_OPEN.search(text)
    if found is None:
        raise InputError(
            "no `table ip kube-proxy` in the nft listing: is kube-proxy in nftables mode on this "
            "node? (read it with `nft list table ip kube-proxy`)",
            field="nft",
        )
    lines = text[found.end() :].splitlines()
    depth = 1
    body: list[str] = []
    for line in lines:
        depth += _depth_change(line)
        if depth <= 0:
            return body
        body.append(_HANDLE.sub("", line.strip()))
    raise InputError("the nft listing ends inside `table ip kube-proxy` (cut short?)", field="nft")


def parse_nft_table(text: str) -> NftTable:
    """Read `nft list table ip kube-proxy` (or a whole `nft list ruleset`) into an NftTable."""
    table = NftTable()
    lines = iter(_table_lines(text))
    for line in lines:
        start = _BLOCK_START.match(line)
        if start is None:
            continue  # the table's own comment/flags, blank lines
        kind, name = start.groups()
        depth = 1
        block: list[str] = []
        for inner in lines:
            depth += _depth_change(inner)
            if depth <= 0:
                break
            block.append(inner)
        if kind == "chain":
            table.chains[name] = [r for r in block if _is_rule(r)]
        else:
            (table.maps if kind == "map" else table.sets)[name] = _elements(" ".join(block))
            timeout = next((_seconds(b[8:]) for b in block if b.startswith("timeout ")), None)
            if timeout is not None:
                table.timeouts[name] = timeout
    return table


def _seconds(duration: str) -> int | None:
    """nft's `3h`, `10800s` or `1h30m` as seconds (None if it is not a duration)."""
    parts = _DURATION.findall(duration.strip().rstrip(";"))
    if not parts:
        return None
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in parts)


def _is_rule(line: str) -> bool:
    """Not a blank line, a base chain's `type … hook …; policy …;` or the chain's own comment."""
    return (
        bool(line)
        and not (line.startswith("type ") and " hook " in line)
        and not (line.startswith("policy ") or _COMMENT.fullmatch(line))
    )


def _split_top(text: str) -> list[str]:
    """Split on commas outside braces and quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "{}":
            depth += 1 if ch == "{" else -1
        elif not quoted and depth == 0 and ch == ",":
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _elements(block: str) -> list[str]:
    """The element texts of a set/map block (`elements = { a, b }`), whitespace normalised."""
    start = block.find("elements = {")
    if start < 0:
        return []
    inner, depth = [], 1
    for ch in block[start + len("elements = {") :]:
        depth += _depth_change(ch)
        if depth == 0:
            break
        inner.append(ch)
    return [" ".join(e.split()) for e in _split_top("".join(inner))]


# --- rules -----------------------------------------------------------------------------------


def _counted(text: str) -> tuple[str, int, int]:
    """The text with counter values dropped (so it stays stable across reads), packets, bytes."""
    found = _COUNTER.search(text)
    if found is None:
        return text, 0, 0
    return _COUNTER.sub("counter", text), int(found[1]), int(found[2])


def _verdict(text: str) -> str | None:
    """The chain a rule jumps/goes to, else its final verdict word (reject, drop, dnat, …)."""
    outside = re.sub(r"\{[^{}]*\}", "{}", _QUOTED.sub('""', text))
    found: list[str] = _VERDICT.findall(outside)
    if found:
        return found[-1]
    if _DNAT.search(outside):
        return "dnat"
    words = outside.split()
    return next((w for w in reversed(words) if w in _WORD_VERDICTS), None)


def _dnat_target(value: str) -> str:
    """`10.42.0.142:12345` or `[fd00::1]:80` as written; a map's `ip . port` becomes `ip:port`."""
    if " . " in value:
        ip, port = (p.strip() for p in value.split(" . ", 1))
        return join_host_port(ip, int(port))
    return value


def _branches(body: str) -> list[tuple[int, str]]:
    """`0 : goto X, 1 : goto Y` -> [(0, "goto X"), (1, "goto Y")]."""
    out = []
    for part in _split_top(body):
        key, _, value = part.partition(":")
        out.append((int(key.strip()), value.strip()))
    return out


def _rules_of(chain: str, line: str) -> list[Rule]:
    """One listed rule as Rules: a random vmap/map gives one Rule per branch (share 1/N)."""
    spec, packets, bytes_ = _counted(line)
    found = _COMMENT.search(spec)
    comment = found[1] if found else None
    vmap, dmap = _NUMGEN_VMAP.search(spec), _NUMGEN_DNAT.search(spec)
    if vmap is None and dmap is None:
        dnat = _DNAT.search(spec)
        dnat_to = _dnat_target(dnat[1]) if dnat else None
        return [Rule(chain, spec, _verdict(spec), comment, None, dnat_to, packets, bytes_)]
    numgen = vmap or dmap
    assert numgen is not None  # one of the two matched
    share = 1.0 / int(numgen[1])
    rules = []
    for index, value in _branches(numgen[2]):
        counted = (packets, bytes_) if index == 0 else (0, 0)  # the rule's counter, counted once
        if vmap is not None:
            target, dnat_to = _verdict(value), None
        else:
            target, dnat_to = "dnat", _dnat_target(value)
        rules.append(Rule(chain, spec, target, comment, share, dnat_to, *counted))
    return rules


def _element_rule(map_name: str, element: str) -> Rule:
    """A verdict-map element as a Rule: chain = the map, spec = the element, target = verdict."""
    spec, packets, bytes_ = _counted(element)
    found = _COMMENT.search(spec)
    _, _, verdict = spec.rpartition(" : ")
    return Rule(
        map_name, spec, _verdict(verdict), found[1] if found else None, None, None, packets, bytes_
    )


def _element_key(element: str) -> str:
    """The key part of an element (`10.43.0.10 . tcp . 53`), without its comment or counter."""
    key, _, _ = element.rpartition(" : ")
    return " ".join(_COUNTER.sub("", _COMMENT.sub("", key)).split())


# --- one Service -----------------------------------------------------------------------------


def _no_endpoint_keys(service: Service) -> tuple[set[str], set[str]]:
    """What the Service's no-endpoint elements carry: keys (clusterIP / nodePort) and comments."""
    keys: set[str] = set()
    comments: set[str] = set()
    for port in service.ports:
        proto = proto_of(port)
        comments.add(f"{service.key}:{port.name}" if port.name else service.key)
        if service.cluster_ip:
            keys.add(f"{service.cluster_ip} . {proto} . {port.port}")
        if port.node_port:
            keys.add(f"{proto} . {port.node_port}")
    return keys, comments


def _walk(table: NftTable, roots: list[str]) -> dict[str, list[Rule]]:
    """The port's chains that hold rules, then the endpoint chains they lead to, in branch order.

    An empty one is stale: kube-proxy flushes a chain that went away and deletes it a second later.
    """
    found: dict[str, list[Rule]] = {}
    for chain in roots:
        if table.chains.get(chain):
            found[chain] = [r for line in table.chains[chain] for r in _rules_of(chain, line)]
    for rules in list(found.values()):
        for rule in rules:
            target = rule.target or ""
            if target.startswith(ENDPOINT_PREFIX) and target not in found:
                lines = table.chains.get(target, [])
                found[target] = [r for line in lines for r in _rules_of(target, line)]
    return found


def service_tree_nft(text: str, service: Service) -> ChainTree:
    """One Service's rules from `nft list table ip kube-proxy` output, as the dashboard shows them.

    `entry` holds the firewall-ips / service-ips / service-nodeports elements that go to the
    Service's chains; `chains` its firewall-, external-, service-, local- chains and then the
    endpoint- chains they pick, per port; `filter_rules` its no-endpoint-services /
    no-endpoint-nodeports elements (reject or drop, looked up in the filter hooks).
    """
    table = parse_nft_table(text)
    tree = ChainTree(service=service.key, proxy_backend=BACKEND)
    per_port = [_port_chains(service, port) for port in service.ports]
    own = {chain for chains in per_port for chain in chains}
    for name in _ENTRY_MAPS:
        for element in table.maps.get(name, []):
            rule = _element_rule(name, element)
            if rule.target in own:
                tree.entry.append(rule)
    keys, comments = _no_endpoint_keys(service)
    for name in _NO_ENDPOINT_MAPS:
        for element in table.maps.get(name, []):
            rule = _element_rule(name, element)
            if rule.comment in comments or _element_key(element) in keys:
                tree.filter_rules.append(rule)
    for chains in per_port:
        tree.chains.update(_walk(table, chains))
    sets = (found[1] for r in tree.all_rules() if (found := _AFFINITY_SET.search(r.spec)))
    tree.affinity_seconds = next((table.timeouts[s] for s in sets if s in table.timeouts), None)
    return tree


def nft_share_of(tree: ChainTree) -> dict[str, float]:
    """Each endpoint's share of new connections, keyed by endpoint chain (or `ip:port` in 1.36+).

    Every branch of `numgen random mod N` gets 1/N. A local- chain counts only for ports that
    have no service- chain (as `restore.share_of` does for KUBE-SVL-).
    """
    shares: dict[str, float] = {}
    cluster_bases = {c[len(SERVICE_PREFIX) :] for c in tree.chains if c.startswith(SERVICE_PREFIX)}
    for chain, rules in tree.chains.items():
        local_only = (
            chain.startswith(LOCAL_PREFIX) and chain[len(LOCAL_PREFIX) :] not in cluster_bases
        )
        if not (chain.startswith(SERVICE_PREFIX) or local_only):
            continue
        for rule in rules:
            key = rule.dnat_to if rule.target == "dnat" else rule.target
            if rule.probability is not None and key:
                shares[key] = shares.get(key, 0.0) + rule.probability
    return shares
