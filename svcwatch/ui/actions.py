"""One registry of every bindable dashboard action: keys, footer, command palette and help agree.

The app builds its `BINDINGS` from `DASHBOARD_ACTIONS`, the command palette lists the same
entries, and the help screen renders this table, so a key documented anywhere is the key that
works. Scenario keys come from `svcwatch.model.scenario.SCENARIOS` so a new scenario needs no UI
change. An action marked `only="replay"` (or `"live"`) applies only to that kind of session: the
app's `check_action` asks `applies_to`, so a replay's space pauses the replay itself, and the same
key pauses just the stream pane on a live session (Textual tries a key's bindings in order).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from textual.binding import Binding, BindingType

from svcwatch.model.scenario import SCENARIOS
from svcwatch.session.capabilities import Capabilities


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """A user-facing action: its key, the app action it runs and how to describe it."""

    id: str  # stable name a user keymap could target, e.g. "scenario-wrong-port"
    key: str  # Textual key name ("1", "space", "question_mark")
    display_key: str  # what the help screen prints ("1", "space", "?")
    action: str  # app action string, e.g. "scenario('wrong-port')"
    description: str  # short footer label
    help: str  # one sentence for the help screen and the palette
    show: bool = True  # shown in the footer
    priority: bool = False  # before the focused widget (the stream scrolls with the arrows)
    only: str | None = None  # "replay" or "live": the sessions it applies to (None: all)

    def binding(self) -> Binding:
        return Binding(
            self.key,
            self.action,
            self.description,
            show=self.show,
            tooltip=self.help,
            id=self.id,
            key_display=self.display_key,
            priority=self.priority,
        )


def _scenario_actions() -> list[ActionSpec]:
    out = []
    for scenario in SCENARIOS.values():
        out.append(
            ActionSpec(
                id=f"scenario-{scenario.name}",
                key=scenario.key,
                display_key=scenario.key,
                action=f"scenario('{scenario.name}')",
                description=scenario.title,
                help=scenario.caption,
                # 5-8 stay off the footer so it fits 80 columns; help and palette list them.
                show=int(scenario.key) <= 4,
            )
        )
    return out


_REPLAY_ACTIONS = [
    ActionSpec(
        "replay-pause",
        "space",
        "space",
        "replay_toggle_pause",
        "Pause",
        "Replay: pause or resume the replay itself (its clock stops; nothing is skipped).",
        only="replay",
    ),
    ActionSpec(
        "replay-step",
        "full_stop",
        ".",
        "replay_step",
        "Step",
        "Replay: show the next recorded event, then stay paused there.",
        only="replay",
    ),
    ActionSpec(
        "replay-slower",
        "left_square_bracket",
        "[",
        "replay_slower",
        "Slower",
        "Replay: play slower (0.25x to 25x; the header shows the speed).",
        only="replay",
    ),
    ActionSpec(
        "replay-faster",
        "right_square_bracket",
        "]",
        "replay_faster",
        "Faster",
        "Replay: play faster (0.25x to 25x; the header shows the speed).",
        only="replay",
    ),
]

DASHBOARD_ACTIONS: list[ActionSpec] = [
    # ? and q first: the footer shows bindings in this order and cuts the end on a small screen.
    ActionSpec("help", "question_mark", "?", "help", "Help", "Show this help screen."),
    ActionSpec(
        "quit",
        "q,ctrl+c",  # ctrl+c quits too, as in k9s (Textual's own default is ctrl+q)
        "q",
        "quit_dashboard",
        "Quit",
        "Quit (ctrl+c too); a lab this svcwatch built is torn down, unless --keep or another"
        " svcwatch uses it.",
    ),
    *_scenario_actions(),
    ActionSpec(
        "edit-slice",
        "e",
        "e",
        "edit_slice",
        "Edit slice",
        "Edit the EndpointSlice in $EDITOR; it is validated on save and applied only if valid.",
    ),
    *_REPLAY_ACTIONS,  # before pause-stream: on a replay, space pauses the replay
    ActionSpec(
        "pause-stream",
        "space",
        "space",
        "toggle_pause",
        "Pause",
        "Pause or resume the packet stream (packets keep being counted).",
        only="live",
    ),
    ActionSpec(
        "filter-stream",
        "slash",
        "/",
        "filter_stream",
        "Filter",
        "Filter the packet stream by interface, address or kind (empty shows all).",
    ),
    ActionSpec(
        "clear-stream",
        "c",
        "c",
        "clear_stream",
        "Clear",
        "Clear the packet stream and the probe history.",
    ),
    ActionSpec(
        "write-pcap",
        "w",
        "w",
        "write_pcap",
        "Write pcap",
        "Write the packets still held (raw bytes) to ./svcwatch-<date>-<time>.pcapng, or into "
        "$SVCWATCH_PCAP_DIR, for Wireshark or tshark.",
        show=False,
    ),
    ActionSpec(
        "switch-proxy-mode",
        "m",
        "m",
        "switch_proxy_mode",
        "Proxy mode",
        "Switch kube-proxy between iptables and nftables mode on the running lab (rules swapped "
        "atomically), to show the same break both ways (lab only).",
        show=False,
    ),
    ActionSpec(
        "next-theme",
        "t",
        "t",
        "next_theme",
        "Theme",
        "Switch to the next theme (dark, light, projector, then your own).",
    ),
    ActionSpec(
        "prestop-replay",
        "p",
        "p",
        "prestop_replay",
        "preStop",
        "Replay the rollout with a preStop-style delay: new pod first, old pod kept until the "
        "rules move, so no connection is lost (lab only).",
        show=False,
    ),
    ActionSpec(
        "next-scene",
        "right",
        "→",
        "next_scene",
        "Next scene",
        "With --script: go to the next scene of the talk (its scenario and caption).",
        show=False,
        priority=True,
    ),
    ActionSpec(
        "previous-scene",
        "left",
        "←",
        "previous_scene",
        "Previous scene",
        "With --script: go back to the previous scene of the talk.",
        show=False,
        priority=True,
    ),
    ActionSpec(
        "zoom-pane",
        "z",
        "z",
        "zoom_pane",
        "Zoom",
        "Zoom the focused pane to the whole screen, and back (for an 80x24 projector).",
    ),
    ActionSpec(
        "focus-next-pane",
        "tab",
        "Tab",
        "focus_next",
        "Next pane",
        "Move the focus to the next pane (shift+Tab: the previous one); z zooms it.",
        show=False,
    ),
    ActionSpec(
        "next-node",
        "n",
        "n",
        "next_node",
        "Node",
        "On a cluster with several watched nodes: show the next node's kube-proxy rules in the "
        "chain pane (its title names the node).",
        show=False,
    ),
]


# What a session must be able to do for an action to be offered (footer, help, palette).
_NEEDS: dict[str, Callable[[Capabilities], bool]] = {
    "edit_slice": lambda caps: caps.slice_editing is not None,
    "prestop_replay": lambda caps: caps.rollout_replay is not None,
    "switch_proxy_mode": lambda caps: caps.proxy_modes is not None,
    "next_node": lambda caps: caps.node_switching is not None,
}


def offered(
    spec: ActionSpec, caps: Capabilities, scenarios: Sequence[str], *, scripted: bool
) -> bool:
    """Whether this session offers `spec`: a replay offers its recorded scenarios and its clock,
    not `e`, `p` or `m`; arrows only with a talk script (what a key that is not offered does
    instead is say why, in one line, and change nothing)."""
    name = spec.action.partition("(")[0]
    if name == "scenario":
        return spec.id.removeprefix("scenario-") in scenarios
    if name in ("next_scene", "previous_scene"):
        return scripted
    if spec.only:
        return applies_to(name, replay=caps.replay is not None)
    need = _NEEDS.get(name)
    return need is None or need(caps)


def help_for(spec: ActionSpec, caps: Capabilities) -> str:
    """The action's help sentence as it is true for this session."""
    if spec.id == "quit" and caps.exit_report is None:  # no lab to tear down or keep
        return "Quit (ctrl+c too)."
    return spec.help


def applies_to(action: str, *, replay: bool) -> bool:
    """Whether the registry's `action` (its method name, without parameters) applies to a replay
    (`replay`) or a live session; actions not in the registry always do."""
    only = _ONLY.get(action)
    if only is None:
        return True
    return replay == (only == "replay")


_ONLY = {spec.action.partition("(")[0]: spec.only for spec in DASHBOARD_ACTIONS if spec.only}
_KEYS = {spec.action: spec.display_key for spec in DASHBOARD_ACTIONS}


def key_for(action: str) -> str | None:
    """The key (as the help screen prints it) bound to a registry action string, e.g. "2"."""
    return _KEYS.get(action)


def bindings() -> list[BindingType]:
    """The app's key bindings, in registry order."""
    return [spec.binding() for spec in DASHBOARD_ACTIONS]
