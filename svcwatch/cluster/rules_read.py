"""One Service's kube-proxy rules read on a node, at a cost that does not grow with the node.

A node with 10,000 Services holds ~120,000 nat rules (16 MB of `iptables-save`); dumping and
parsing all of them took 1-2 s a read. The Service's own chains are known from their hash
(KUBE-SVC-/KUBE-EXT-/KUBE-FW-/KUBE-SVL-, then the KUBE-SEP- chains they jump to), so the agent
lists just those, filtered ON THE NODE in one `sh -c` per read:

* iptables-nft (the common backend): `iptables -t nat -S CHAIN -v` per chain fetches only that
  chain from the kernel (~3 ms whatever the node's size). The shared chains are filtered with
  `grep -F`: the filter table's KUBE-SERVICES / KUBE-EXTERNAL-SERVICES / KUBE-PROXY-FIREWALL
  (REJECT/DROP for Services without endpoints or outside their source ranges, few on a healthy
  node; the filter KUBE-NODEPORTS holds only health-check ACCEPTs) on every read; the nat
  KUBE-SERVICES / KUBE-NODEPORTS jumps only when asked (`entry`): those chains hold a rule per
  Service, and listing one costs ~10 us a rule, so they are re-read after changes only.
* iptables-legacy: the kernel hands out the whole table whatever is asked (libiptc parses all of
  it even for one chain), so one `iptables-save` a table is the cheapest; it is filtered with
  `grep -F` before it leaves the node.
* nftables mode: one `nft list table ip kube-proxy`.

Which of these a node needs is found once (`DETECT_SCRIPT`) and remembered. The listings are
turned into iptables-save text (`listing_to_save`) so the same `parse_save`/`service_tree` reads
them as read a whole dump; tests check both give the same ChainTree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from svcwatch.kubeproxy import chains as names
from svcwatch.model.errors import InputError
from svcwatch.model.service import Service

NFT_ARGV = ("nft", "list", "table", "ip", "kube-proxy")
RULES_TOOLS = ("iptables", "iptables-nft", "iptables-legacy", "nft")  # what DETECT_SCRIPT tries

# Prints one line: `iptables TOOL VERSION-TEXT`, `nftables`, or `none` and the tools not there.
DETECT_SCRIPT = r"""
for ipt in iptables iptables-nft iptables-legacy; do
  command -v "$ipt" >/dev/null 2>&1 || continue
  "$ipt" -w 5 -t nat -S KUBE-SERVICES 1 >/dev/null 2>&1 || continue
  echo "iptables $ipt $("$ipt" -V 2>&1 | head -n 1)"; exit 0
done
if command -v nft >/dev/null 2>&1 && nft list tables 2>/dev/null | grep -qx 'table ip kube-proxy'
then echo nftables; exit 0; fi
missing=
for t in iptables iptables-nft iptables-legacy nft; do
  command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
echo "none$missing"
"""

# Shared by both iptables readers: `matching TEXT WORD...` prints TEXT's lines with any WORD.
_MATCHING = r"""
set -f
matching() {
  text=$1; shift
  for w in "$@"; do set -- "$@" -e "$w"; shift; done
  [ $# -gt 0 ] && printf '%s\n' "$text" | grep -F "$@"
  return 0
}
"""

# Args: TOOL ENTRY(0|1) OWN-CHAINS ENTRY-WORDS FILTER-WORDS (space-separated words).
PER_CHAIN_SCRIPT = (
    _MATCHING
    + r"""
ipt=$1 entry=$2 own=$3 entry_words=$4 filter_words=$5
list() {  # table chain: its rules with counters; nothing when the chain does not exist
  out=$("$ipt" -w 5 -t "$1" -S "$2" -v 2>&1) && { printf '%s\n' "$out"; return 0; }
  case $out in *"No chain/target/match"*|*"is incompatible"*) return 0;; esac
  printf '%s\n' "$out" >&2; exit 3
}
echo '*nat'
mine=
for c in $own; do
  got=$(list nat "$c") || exit $?
  [ -n "$got" ] && mine="$mine$got
"
done
printf '%s' "$mine"
for c in $(printf '%s' "$mine" | grep -o 'KUBE-SEP-[A-Z0-9]*' | sort -u); do list nat "$c"; done
if [ "$entry" = 1 ]; then
  for c in KUBE-SERVICES KUBE-NODEPORTS; do
    got=$(list nat "$c") || exit $?; matching "$got" $entry_words
  done
fi
echo '*filter'
for c in KUBE-SERVICES KUBE-EXTERNAL-SERVICES KUBE-PROXY-FIREWALL; do
  got=$(list filter "$c") || exit $?; matching "$got" $filter_words
done
"""
)

# Args: SAVE-TOOL OWN-CHAINS FILTER-WORDS.
SAVE_SCRIPT = (
    _MATCHING
    + r"""
save=$1 own=$2 filter_words=$3
nat=$("$save" -c -t nat) || exit $?
seps=$(matching "$nat" $own | grep -o 'KUBE-SEP-[A-Z0-9]*' | sort -u)
echo '*nat'
matching "$nat" $own $seps
filt=$("$save" -c -t filter) || exit $?
echo '*filter'
matching "$filt" $filter_words
"""
)

_LISTED_COUNTERS = re.compile(r" -c (\d+) (\d+)(?= -[jg] |$)")


@dataclass(frozen=True, slots=True)
class RulesSource:
    """How kube-proxy's rules are read on one node, as `DETECT_SCRIPT` found it."""

    mode: str  # "iptables" | "nftables" | "none"
    tool: str = ""  # iptables, iptables-nft or iptables-legacy
    backend: str = ""  # iptables-nft | iptables-legacy | nftables
    missing: tuple[str, ...] = ()  # mode "none": the tools the agent's image does not have

    @property
    def per_chain(self) -> bool:
        """Whether listing one chain is cheap (nf_tables fetches just it; legacy never does)."""
        return self.backend == "iptables-nft"

    @property
    def command(self) -> str:
        """The tool whose output the read is made of, for messages."""
        if self.mode != "iptables":
            return " ".join(NFT_ARGV) if self.mode == "nftables" else ""
        return self.tool if self.per_chain else save_tool(self.tool)


def parse_detected(text: str) -> RulesSource:
    """`DETECT_SCRIPT`'s line -> RulesSource."""
    from svcwatch.kubeproxy.mode import flavour_of_version

    words = text.split()
    if words[:1] == ["iptables"] and len(words) >= 2:
        try:
            backend = flavour_of_version(" ".join(words[2:]))
        except InputError:
            backend = "iptables-legacy" if "legacy" in words[1] else "iptables-nft"
        return RulesSource("iptables", words[1], backend)
    if words[:1] == ["nftables"]:
        return RulesSource("nftables", "nft", "nftables")
    return RulesSource("none", missing=tuple(words[1:]) if words[:1] == ["none"] else ())


def save_tool(tool: str) -> str:
    """iptables-nft -> iptables-nft-save; iptables -> iptables-save."""
    return f"{tool}-save"


def own_chains(service: Service) -> list[str]:
    """Per port, the chains whose names the hash gives: FW, EXT, SVC, SVL (walk order)."""
    out: list[str] = []
    for port in service.ports:
        spn, proto = names.service_port_name(service, port), names.proto_of(port)
        out += [make(spn, proto) for make in (names.fw_chain, names.ext_chain, names.svc_chain)]
        out.append(names.svl_chain(spn, proto))
    return out


def filter_words(service: Service) -> list[str]:
    """Words every filter-table rule for the Service contains one of: its comment's start or
    its ClusterIP (a superset: `service_tree` keeps exactly the Service's own)."""
    words = [f'"{names.service_port_name(service, port)}' for port in service.ports]
    if service.cluster_ip and service.cluster_ip != "None":
        words.append(f"{service.cluster_ip}/32")
    return words


def read_argv(source: RulesSource, service: Service, *, entry: bool) -> list[str]:
    """The one command that reads `service`'s rules on a node read as `source` says."""
    if source.mode == "nftables":
        return list(NFT_ARGV)
    own = " ".join(own_chains(service))
    words = " ".join(filter_words(service))
    if source.per_chain:
        flag = "1" if entry else "0"
        return ["sh", "-c", PER_CHAIN_SCRIPT, "svcwatch-rules", source.tool, flag, own, own, words]
    return ["sh", "-c", SAVE_SCRIPT, "svcwatch-rules", save_tool(source.tool), own, words]


def listing_to_save(text: str) -> str:
    """`iptables -S CHAIN -v` lines (and iptables-save lines) as `iptables-save -c` text."""
    out: list[str] = []
    for line in text.splitlines():
        if line.startswith(("*", ":", "[")):
            out.append(line)
        elif line.startswith("-N "):
            out.append(f":{line[3:].strip()} - [0:0]")
        elif line.startswith("-A "):
            found = list(_LISTED_COUNTERS.finditer(line))
            if found:
                last = found[-1]
                line = f"[{last[1]}:{last[2]}] {line[: last.start()]}{line[last.end() :]}"
            out.append(line)
    return "\n".join(out) + "\n"
