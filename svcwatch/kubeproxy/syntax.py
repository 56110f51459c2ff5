"""iptables rule-spec syntax: tokens, the facts a rule carries, and iptables-save's printed form.

kube-proxy WRITES a rule the way it builds its argument list
(`-m comment --comment "default/socat cluster IP" -m tcp -p tcp -d 10.43.161.224 --dport 12345`),
but the kernel keeps a parsed rule and `iptables-save` PRINTS it back differently (checked against
iptables v1.8.9, nft and legacy backends print the same):

- `-s`, `-d`, `-i`, `-o`, `-p` (with their `!`) move to the front, in that order; addresses gain
  `/32`; the remaining matches keep their order, each followed by its own options;
- a comment is quoted only if it has a character outside `[A-Za-z0-9_-]` (`"`, `\\`, `'` escaped);
- `--probability P` prints the stored u32 round(P * 2^31) divided by 2^31 as `%.11f`;
- `-m recent` prints its mode, `--seconds`/`--reap`, then `--name N --mask 255.255.255.255
  --rsource` (see `_saved_recent`);
- marks print as `0x4000`; `MARK --or-mark M` becomes `--set-xmark M/M` and `--xor-mark M`
  becomes `--set-xmark M/0x0`; a bare `REJECT` gains `--reject-with icmp-port-unreachable`.

`saved_spec` applies those rules, so a rendering can be compared byte for byte with a real dump.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Sequence

from svcwatch.kubeproxy.rules import Rule

_NO_QUOTE = set("_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# Front options in iptables-save's order, with the long spellings iptables also accepts.
_FRONT = {
    "-s": "-s",
    "--source": "-s",
    "--src": "-s",
    "-d": "-d",
    "--destination": "-d",
    "--dst": "-d",
    "-i": "-i",
    "--in-interface": "-i",
    "-o": "-o",
    "--out-interface": "-o",
    "-p": "-p",
    "--protocol": "-p",
}
_FRONT_ORDER = ("-s", "-d", "-i", "-o", "-p")
_U32_ONE = 0x80000000


def tokenize(spec: str) -> list[str]:
    """Split a rule spec like a shell would for iptables: double quotes, backslash escapes."""
    tokens: list[str] = []
    current: list[str] = []
    in_token = quoted = False
    chars = iter(spec)
    for ch in chars:
        if ch == "\\":
            current.append(next(chars, ""))
            in_token = True
        elif ch == '"':
            quoted, in_token = not quoted, True
        elif ch.isspace() and not quoted:
            if in_token:
                tokens.append("".join(current))
            current, in_token = [], False
        else:
            current.append(ch)
            in_token = True
    if in_token:
        tokens.append("".join(current))
    return tokens


def _after(tokens: Sequence[str], option: str) -> str | None:
    for i, token in enumerate(tokens[:-1]):
        if token == option:
            return tokens[i + 1]
    return None


def make_rule(chain: str, spec: str, packets: int = 0, bytes_: int = 0) -> Rule:
    """A Rule for `-A chain spec`, with its target, comment, probability and DNAT parsed out."""
    tokens = tokenize(spec)
    target = _after(tokens, "-j") or _after(tokens, "-g")
    probability = _after(tokens, "--probability")
    return Rule(
        chain=chain,
        spec=spec,
        target=target,
        comment=_after(tokens, "--comment"),
        probability=float(probability) if probability is not None else None,
        dnat_to=_after(tokens, "--to-destination"),
        packets=packets,
        bytes=bytes_,
    )


def saved_probability(written: float) -> float:
    """What iptables-save prints for `--probability written`: round(p * 2^31) / 2^31."""
    return math.floor(written * _U32_ONE + 0.5) / _U32_ONE


def save_string(value: str) -> str:
    """A string argument as iptables-save prints it (xtables_save_string)."""
    if value and set(value) <= _NO_QUOTE:
        return value
    escaped = "".join("\\" + ch if ch in "\"\\'" else ch for ch in value)
    return f'"{escaped}"'


def _mark(value: str) -> str:
    if "/" in value:
        mark, mask = value.split("/", 1)
        return f"{int(mark, 0):#x}/{int(mask, 0):#x}"
    return f"{int(value, 0):#x}"


def _set_xmark(option: str, value: str) -> str:
    """MARK target options as the kernel stores them (mark/mask) and iptables-save prints them."""
    if "/" in value:
        mark, mask = (int(v, 0) for v in value.split("/", 1))
    else:
        mark, mask = int(value, 0), 0xFFFFFFFF
    stored = {
        "--set-xmark": (mark, mask),
        "--set-mark": (mark, mark | mask),
        "--or-mark": (mark, mark),
        "--xor-mark": (mark, 0),
        "--and-mark": (0, ~mark & 0xFFFFFFFF),
    }[option]
    return f"--set-xmark {stored[0]:#x}/{stored[1]:#x}"


def _address(value: str) -> str:
    return str(ipaddress.ip_network(value, strict=False))


def _saved_option(option: str, value: str, target: str | None) -> str:
    if option == "--comment":
        return f"--comment {save_string(value)}"
    if option == "--probability":
        return f"--probability {saved_probability(float(value)):.11f}"
    if option == "--mark":
        return f"--mark {_mark(value)}"
    if option == "--nfacct-name":
        return f"--nfacct-name  {value}"  # iptables-save really prints two spaces here
    if target == "MARK" and option in (
        "--set-xmark",
        "--set-mark",
        "--or-mark",
        "--xor-mark",
        "--and-mark",
    ):
        return _set_xmark(option, value)
    return f"{option} {value}"


def _split_front(tokens: list[str]) -> tuple[dict[str, str], list[str]]:
    """Pull `[!] -s/-d/-i/-o/-p VALUE` out of the token list; return them and the rest."""
    front: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(tokens):
        negated = tokens[i] == "!" and i + 1 < len(tokens) and tokens[i + 1] in _FRONT
        j = i + 1 if negated else i
        if tokens[j] in _FRONT and j + 1 < len(tokens):
            key = _FRONT[tokens[j]]
            value = tokens[j + 1]
            value = (
                value.lower() if key == "-p" else _address(value) if key in ("-s", "-d") else value
            )
            front[key] = ("! " if negated else "") + f"{key} {value}"
            i = j + 2
        else:
            rest.append(tokens[i])
            i += 1
    return front, rest


_RECENT_FLAGS = ("--set", "--rcheck", "--update", "--remove", "--reap", "--rttl")
_RECENT_VALUES = ("--seconds", "--hitcount", "--name", "--mask")


def _saved_recent(tokens: Sequence[str]) -> tuple[int, str]:
    """`-m recent` options as the kernel keeps them: (tokens used, the printed match).

    kube-proxy writes `--name N --rcheck --seconds S --reap` and `--name N --set`; iptables-save
    prints the mode first, then --seconds/--reap, then `--name N --mask 255.255.255.255
    --rsource` (the defaults filled in), as a real dump shows.
    """
    flags: set[str] = set()
    values = {"--mask": "255.255.255.255"}
    used = 0
    while used < len(tokens) and tokens[used] in (*_RECENT_FLAGS, *_RECENT_VALUES, "--rsource"):
        if tokens[used] in _RECENT_VALUES and used + 1 < len(tokens):
            values[tokens[used]] = tokens[used + 1]
            used += 2
        else:
            flags.add(tokens[used])
            used += 1
    out = ["-m recent"]
    out += [f for f in ("--set", "--rcheck", "--update", "--remove") if f in flags]
    out += [f"--seconds {values['--seconds']}"] if "--seconds" in values else []
    out += ["--reap"] if "--reap" in flags else []
    out += [f"--hitcount {values['--hitcount']}"] if "--hitcount" in values else []
    out += ["--rttl"] if "--rttl" in flags else []
    out += [f"--name {values.get('--name', 'DEFAULT')}", f"--mask {values['--mask']}", "--rsource"]
    return used, " ".join(out)


def saved_spec(spec: str) -> str:
    """A written rule spec as `iptables-save` would print it back (see the module docstring)."""
    front, rest = _split_front(tokenize(spec))
    target = _after(rest, "-j")
    out = [front[key] for key in _FRONT_ORDER if key in front]
    i = 0
    while i < len(rest):
        token = rest[i]
        value = rest[i + 1] if i + 1 < len(rest) else None
        if (
            token.startswith("--")
            and value is not None
            and value != "!"
            and not value.startswith("-")
        ):
            out.append(_saved_option(token, value, target))
            i += 2
        elif token == "-m" and value == "recent":
            used, printed = _saved_recent(rest[i + 2 :])
            out.append(printed)
            i += 2 + used
        elif token in ("-m", "-j", "-g") and value is not None:
            out.append(f"{token} {value}")
            i += 2
        else:
            out.append(token)
            i += 1
    if target == "REJECT" and "--reject-with" not in rest:
        out.append("--reject-with icmp-port-unreachable")
    return " ".join(out)


def saved_rule(rule: Rule) -> Rule:
    """The same rule as iptables-save would print it (counters kept)."""
    return make_rule(rule.chain, saved_spec(rule.spec), rule.packets, rule.bytes)
