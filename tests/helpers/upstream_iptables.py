"""Upstream kube-proxy's own comparison of restore texts, and its golden files in tests/data.

kube-proxy walks its Services in Go map order, so its tests compare rule texts only after
`sortIPTablesRules` (pkg/proxy/iptables/proxier_test.go): tables by name; chains KUBE-NODEPORTS,
KUBE-SERVICES, then other KUBE-* chains, then the rest, each group alphabetically; every chain's
rules grouped under it in their written order, except KUBE-NODEPORTS and KUBE-SERVICES, whose
rules are stably sorted by the service name in their comment (the nat KUBE-SERVICES "must be the
last rule" rule staying last). `upstream_sorted` is that function, so a rendering compares to
upstream's expected text with exactly upstream's masking and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from svcwatch.kubeproxy.render import ProxyConfig
from svcwatch.kubeproxy.syntax import tokenize

# NewFakeProxier: pod CIDR 10.0.0.0/8, mark "0x4000", fake iptables without --random-fully,
# node "test-node" at 192.168.0.2, localhost NodePorts on, both nfacct counters present (v1.31+).
FAKE_PROXIER = ProxyConfig(
    cluster_cidr="10.0.0.0/8",
    mark_text="0x4000",
    random_fully=False,
    node_name="test-node",
    node_ip="192.168.0.2",
    version="1.31",
    node_addresses=("127.0.0.1", "192.168.0.2", "192.168.1.2", "192.168.99.11", "2001:db8::1"),
)
UPSTREAM = Path(__file__).resolve().parents[1] / "data" / "iptables" / "upstream"
_LAST_RULE = "must be the last rule"


@dataclass
class _Table:
    name: str
    chains: list[str] = field(default_factory=list)
    rules: dict[str, list[str]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)


def golden(name: str) -> str:
    """A golden file without its `#` header lines."""
    lines = (UPSTREAM / name).read_text().splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("#"))


def golden_blocks(name: str) -> dict[str, str]:
    """`## title` blocks of a golden file: title -> the lines under it."""
    blocks: dict[str, str] = {}
    title = None
    for line in (UPSTREAM / name).read_text().splitlines(keepends=True):
        if line.startswith("## "):
            title = line[3:].strip()
            blocks[title] = ""
        elif title is not None and not line.startswith("#"):
            blocks[title] += line
    return blocks


def _parse(text: str) -> list[_Table]:
    tables: list[_Table] = []
    for line in text.splitlines():
        if line.startswith("*"):
            tables.append(_Table(line[1:]))
        elif line.startswith(":"):
            chain = line[1:].split()[0]
            tables[-1].chains.append(chain)
            tables[-1].rules.setdefault(chain, [])
        elif line.startswith("-A "):
            tables[-1].rules[line.split()[1]].append(line)
        elif line.startswith("-X "):
            tables[-1].deleted.append(line.split()[1])
    return tables


def _chain_key(chain: str) -> tuple[int, str]:
    order = {"KUBE-NODEPORTS": 0, "KUBE-SERVICES": 1}
    return (order.get(chain, 2 if chain.startswith("KUBE-") else 3), chain)


def _service_name(rule: str) -> str:
    """orderByCommentServiceName: the comment up to its first space or colon."""
    tokens = tokenize(rule)
    text = tokens[tokens.index("--comment") + 1]
    cut = min((i for i in (text.find(" "), text.find(":")) if i >= 0), default=len(text))
    return text[:cut]


def _rule_key(table: str, chain: str, rule: str) -> tuple[bool, str]:
    last = table == "nat" and chain == "KUBE-SERVICES" and _LAST_RULE in rule
    return (last, "" if last else _service_name(rule))


def upstream_sorted(text: str) -> str:
    """sortIPTablesRules(text), then IPTablesDump.String()."""
    out: list[str] = []
    for table in sorted(_parse(text), key=lambda t: t.name):
        chains = sorted(table.chains, key=_chain_key)
        out.append(f"*{table.name}")
        out.extend(f":{c} - [0:0]" for c in chains)
        for chain in chains:
            rules = table.rules[chain]
            if chain in ("KUBE-NODEPORTS", "KUBE-SERVICES"):
                rules = sorted(rules, key=partial(_rule_key, table.name, chain))
            out.extend(rules)
        out.extend(f"-X {c}" for c in chains if c in table.deleted)
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def chain_lines(text: str, table: str, chain: str) -> str:
    """One chain's rules in a restore text (assertIPTablesChainEqual's view)."""
    for parsed in _parse(text):
        if parsed.name == table:
            return "".join(line + "\n" for line in parsed.rules.get(chain, []))
    return ""


# --- upstream's packet tracer (iptablesTracer / tracePacket in proxier_test.go) ----------------

TEST_NODE_IPS = ("192.168.0.2", "192.168.1.2", "192.168.99.11", "2001:db8::1", "2001:db8:1::2")


@dataclass
class _Tracer:
    """Walks a packet through rendered rules the way upstream's test tracer does: every rule
    whose matches hold is taken, probabilistic jumps are all explored (so the output lists every
    endpoint a packet may reach), and rules checking history (affinity, marks, ct state) never
    match."""

    tables: dict[str, dict[str, list[str]]]
    local_ips: set[str]
    outputs: list[str] = field(default_factory=list)
    masq: bool = False

    def matches(self, tokens: list[str], packet: dict[str, str]) -> bool:
        checks = {"-s": "src", "-d": "dst", "-p": "proto", "--dport": "dport"}
        for i, token in enumerate(tokens[:-1]):
            negated = i > 0 and tokens[i - 1] == "!"
            value = tokens[i + 1]
            if token in checks:
                hit = _value_matches(token, value, packet[checks[token]])
            elif token in ("--src-type", "--dst-type"):
                ip = packet["src" if token == "--src-type" else "dst"]
                hit = ("LOCAL" if ip in self.local_ips else "not-matched") == value
            else:
                continue
            if hit == negated:
                return False
        return not any(t in tokens for t in ("--rcheck", "mark", "--ctstate"))

    def run(self, table: str, chain: str, packet: dict[str, str]) -> bool:
        for spec in self.tables.get(table, {}).get(chain, []):
            tokens = tokenize(spec)
            if "-j" not in tokens or not self.matches(tokens, packet):
                continue
            target = tokens[tokens.index("-j") + 1]
            if target == "KUBE-MARK-MASQ":
                self.masq = True
            elif target in ("ACCEPT", "REJECT", "DROP"):
                self.outputs.append(target)
                return True
            elif target == "DNAT":
                self.outputs.append(tokens[tokens.index("--to-destination") + 1])
                return True
            elif self.run(table, target, packet) and "--probability" not in tokens:
                return True
        return False


def _value_matches(option: str, value: str, actual: str) -> bool:
    if option in ("-s", "-d"):
        import ipaddress

        return ipaddress.ip_address(actual) in ipaddress.ip_network(value, strict=False)
    return value == actual


def trace_packet(
    restore_text: str,
    src: str,
    dst: str,
    dport: int,
    proto: str = "tcp",
    node_ips: tuple[str, ...] = TEST_NODE_IPS,
) -> tuple[str, bool]:
    """tracePacket: the endpoints (or ACCEPT/DROP/REJECT) a packet reaches, and whether it is
    masqueraded. nat PREROUTING is kube-proxy's jump to KUBE-SERVICES; then, with the DNAT
    applied, the filter chains KUBE-SERVICES, -EXTERNAL-SERVICES, -NODEPORTS, -PROXY-FIREWALL."""
    tables = {t.name: t.rules for t in _parse(restore_text)}
    tracer = _Tracer(tables, {"127.0.0.1", "::1", *node_ips})
    packet = {"src": src, "dst": dst, "dport": str(dport), "proto": proto}
    tracer.run("nat", "KUBE-SERVICES", packet)
    if tracer.outputs:
        packet["dst"] = tracer.outputs[0].rsplit(":", 1)[0]
    for chain in (
        "KUBE-SERVICES",
        "KUBE-EXTERNAL-SERVICES",
        "KUBE-NODEPORTS",
        "KUBE-PROXY-FIREWALL",
    ):
        tracer.run("filter", chain, packet)
    return ", ".join(tracer.outputs), tracer.masq


@dataclass(frozen=True)
class Flow:
    """One packetFlowTest: a packet, where upstream expects it to land, and whether masqueraded."""

    name: str
    src: str
    dst: str
    port: int
    proto: str
    output: str
    masq: bool


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.split("|")]


def flows(section: str) -> list[Flow]:
    """The flows under `## section` in packet-flows.txt."""
    out = []
    for line in golden_blocks("packet-flows.txt")[section].splitlines():
        name, packet, output, masq = _cells(line)
        src, _, target = packet.partition(" -> ")
        address, _, rest = target.rpartition(":")
        port, _, proto = rest.partition("/")
        out.append(Flow(name, src, address, int(port), proto or "tcp", output, masq == "masq"))
    return out


def with_overrides(base: list[Flow], section: str) -> list[Flow]:
    """The base flows with an `overrides:` section applied (`=` keeps the base value)."""
    changes = {}
    for line in golden_blocks("packet-flows.txt")[section].splitlines():
        name, output, masq = _cells(line)
        changes[name] = (output, masq)
    assert set(changes) <= {f.name for f in base}, "an override names no base flow"
    out = []
    for flow in base:
        output, masq = changes.get(flow.name, ("=", "="))
        out.append(
            Flow(
                flow.name,
                flow.src,
                flow.dst,
                flow.port,
                flow.proto,
                flow.output if output == "=" else output,
                flow.masq if masq == "=" else masq == "masq",
            )
        )
    return out


def trace_flows(restore_text: str, cases: list[Flow]) -> list[tuple[str, str, bool]]:
    """(name, output, masq) of each flow traced through `restore_text`."""
    return [(f.name, *trace_packet(restore_text, f.src, f.dst, f.port, f.proto)) for f in cases]


def expected(cases: list[Flow]) -> list[tuple[str, str, bool]]:
    return [(f.name, f.output, f.masq) for f in cases]
