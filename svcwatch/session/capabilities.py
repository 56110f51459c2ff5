"""What a session can do beyond showing: the capabilities a screen asks before offering an action.

Every session shows a Service (the `Session` protocol: objects, chain, facts, events). What else
it can do depends on what it runs on: a lab switches scenarios, edits the slice and replays a
rollout with preStop; a cluster session switches scenarios and edits svcwatch's own slice; a
replay jumps between recorded scenarios and has a clock to pause, step and speed up; a recording
writes each handled key; a cluster watch can break. A session that watches an existing Service
read-only can inject no fault at all and says why.

A session answers `capabilities()` with a `Capabilities`: for each capability the object that
implements it, or None. The UI asks `caps.slice_editing is not None` to decide what a screen
offers, and calls through the typed protocol, so mypy checks every call and no caller guesses with
`getattr`. Wrappers (a recording, a pcap tap) return their inner session's capabilities and replace
only the ones they wrap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class ScenarioSwitching(Protocol):
    """Keys 1-8, the talk script's scenes (→ ←) and `--scenario`: switch to a named scenario.

    On a live session the slice (or a pod) changes; on a replay the clock jumps to the next
    moment that scenario started. The change arrives as events (SliceChanged, RulesSynced, ...).
    """

    def scenarios_offered(self) -> Sequence[str]:
        """The scenario names this session can switch to, in key order."""
        ...

    def request_scenario(self, name: str) -> None:
        """Switch (or jump) to `name`; InputError when this session cannot."""
        ...


class SliceEditing(Protocol):
    """Key `e`: apply an EndpointSlice edited in $EDITOR."""

    def apply_slice_text(self, text: str) -> None:
        """Apply an edited slice (YAML); raises InputError and applies nothing when invalid."""
        ...


class RolloutReplay(Protocol):
    """Key `p`: replay the rollout with a preStop-style delay (moves pods: the lab only)."""

    def replay_rollout_with_prestop(self) -> None:
        """New pod first, the old one retired only once the rules moved; blocks until done."""
        ...


class ProxyModeSwitching(Protocol):
    """Key `m`: switch kube-proxy between iptables and nftables mode on the running lab.

    The rules are swapped (the new mode's in first, then the old mode's out); the change arrives
    as a RulesSynced event naming the new mode, so the chain pane re-reads the kernel.
    """

    @property
    def proxy_mode(self) -> str:
        """iptables or nftables: the mode the lab's rules are in now."""
        ...

    def switch_proxy_mode(self, mode: str | None = None) -> str:
        """Switch to `mode` (None: the other one); returns the mode now in force."""
        ...


class ReplayControls(Protocol):
    """Keys space . [ ] on a replay, the header's "replay ▶ 2x", and the dashboard's clock.

    The controls only take the replay clock's lock (no I/O): safe on the UI's event loop.
    """

    @property
    def speed(self) -> float: ...

    @property
    def paused(self) -> bool: ...

    @property
    def finished(self) -> bool:
        """Every recorded event was played (until a scenario key jumps back)."""
        ...

    def toggle_pause(self) -> None: ...

    def step(self) -> None:
        """Emit the next event now and stay paused there."""
        ...

    def slower(self) -> float: ...

    def faster(self) -> float: ...

    def now(self) -> float:
        """The replay time (recording time): the dashboard's clock while it shows a replay."""
        ...


class KeyRecording(Protocol):
    """Every key the dashboard handles, written to the recording (`--record`); never replayed."""

    def record_key(self, key: str) -> None: ...


class DisplayRecording(Protocol):
    """What the dashboard displayed, written with the number of stream events shown by then
    (`--record`), so a replay shows each value at exactly the same point (ui/display_log.py)."""

    def record_shown(self, what: str, seen: int, fields: dict[str, Any]) -> None: ...


class WatchHealth(Protocol):
    """The header's "⚠ watch stale for Ns" and the diagnosis' stale prefix (a cluster watch)."""

    @property
    def stale_since(self) -> float | None:
        """When the watch broke (time.time()), None while it is live."""
        ...


class ExitReport(Protocol):
    """The line printed when the dashboard closes: what happened to the lab (kept, and why; or
    torn down), known only once the session has stopped."""

    def exit_line(self) -> str | None: ...


class NodeSwitching(Protocol):
    """Key `n` on a cluster with several watched nodes: the chain pane shows the next node's
    rules (each node's kube-proxy writes its own; they differ with Local traffic policy)."""

    def nodes_watched(self) -> Sequence[str]:
        """The nodes whose rules are read, in the order `n` cycles through them."""
        ...

    def show_next_node(self) -> str:
        """Show the next node's rules from now on; its name."""
        ...


@dataclass(frozen=True)
class Capabilities:
    """What one session can do; None where it cannot (see the module docstring)."""

    scenarios: ScenarioSwitching | None = None
    slice_editing: SliceEditing | None = None
    rollout_replay: RolloutReplay | None = None
    proxy_modes: ProxyModeSwitching | None = None
    replay: ReplayControls | None = None
    key_recording: KeyRecording | None = None
    display_recording: DisplayRecording | None = None
    replayed_display: bool = False  # chain, slice, scenario arrive in the stream (a StateSink)
    watch_health: WatchHealth | None = None
    node_switching: NodeSwitching | None = None
    exit_report: ExitReport | None = None
    stream_start: float | None = None  # the stream's +0.000s when the session fixes it
    read_only: str | None = None  # why this session changes nothing (None: it may)

    @property
    def injects_faults(self) -> bool:
        """Whether this session can break the Service (switch a live scenario or edit the slice)."""
        return self.read_only is None and (
            self.scenarios is not None or self.slice_editing is not None
        )
