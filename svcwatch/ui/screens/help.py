"""HelpScreen: every key and what it does, rendered from the one action registry."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from svcwatch.ui.actions import DASHBOARD_ACTIONS, ActionSpec
from svcwatch.ui.keymap import UserKeymap

PANES_HELP = (
    "iptables chain: the Service's rules read back from the kernel, live packet counters, "
    "statistic probabilities as effective shares, rules from the last sync marked ◀ new. In "
    "kube-proxy's nftables mode (m) it is table ip kube-proxy, which has no counters: each "
    "endpoint shows the new connections the capture saw go there ('seen').\n"
    "EndpointSlice: what the slice claims next to the truth: which pod has the IP, whether "
    "anything listens, and how many connections landed there.\n"
    "packets: every frame on eth0 -> cni0 -> veth in the blog post's words, one colour per "
    "interface; probes: what a client sees.\n"
    "The line under the header is the diagnosis: what the evidence says is wrong, in one sentence."
)


def keys_table(
    keymap: UserKeymap | None = None, specs: Sequence[tuple[ActionSpec, str]] | None = None
) -> Table:
    """The keys of `specs` ((action, its help here); default: every action)."""
    table = Table(box=None, expand=True, show_header=True, pad_edge=False)
    table.add_column("key", no_wrap=True, style="bold")
    table.add_column("action", no_wrap=True)
    table.add_column("what it does")
    rows = specs if specs is not None else [(spec, spec.help) for spec in DASHBOARD_ACTIONS]
    for spec, text in rows:
        key = keymap.display(spec.id, spec.display_key) if keymap else spec.display_key
        table.add_row(key, spec.description, text)
    table.add_row("ctrl+p", "Palette", "Search every action above by name.")
    return table


class HelpScreen(ModalScreen[None]):
    """Keys, panes and the diagnosis line explained; any of ? q escape closes it."""

    BINDINGS = [
        Binding("escape", "dismiss", "Close", show=False),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(
        self,
        keymap: UserKeymap | None = None,
        specs: Sequence[tuple[ActionSpec, str]] | None = None,
    ) -> None:
        super().__init__()
        self.keymap = keymap
        self.specs = specs  # what this session offers (None: every action)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(keys_table(self.keymap, self.specs), id="help-keys")
            yield Static(PANES_HELP, id="help-panes")
            yield Static("? or escape closes this help", id="help-close")

    def on_mount(self) -> None:
        self.query_one("#help-box").border_title = "svcwatch help"
