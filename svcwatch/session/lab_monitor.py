"""LabMonitor: a running session's eye on its lab between slice changes.

Every CHECK_SECONDS it asks svcwatch.lab.health whether the data plane is still what was built
(links, addresses, routes, the echo listener, and — for the session that syncs the rules — the
rules against the slice it last synced) and repairs what broke, saying so: a `repaired` Notice
(the diagnosis starts a fresh evidence window, so the pod is not blamed for the lab's outage) or
a `drift` Notice when it cannot repair (the diagnosis says the lab is broken). It also notices the
lab being removed under it (`svcwatch lab down` from another terminal: an `ended` Notice) and
takes over syncing the rules when the session that did quits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from svcwatch.session.common import Notify, one_line

if TYPE_CHECKING:
    from svcwatch.lab.health import Fault
    from svcwatch.lab.node import LabNode

CHECK_SECONDS = 2.0


class LabMonitor:
    """Checks and repairs one lab from its own thread until stopped or the lab is gone."""

    def __init__(
        self,
        node: LabNode,
        *,
        notice: Notify,
        is_controller: Callable[[], bool],
        take_control: Callable[[], bool],
        sync_idle: threading.Lock,
        on_lab_gone: Callable[[str], None],
    ) -> None:
        self.node = node
        self.notice = notice
        self.is_controller = is_controller
        self.take_control = take_control
        self.sync_idle = sync_idle  # held while the session syncs: rules are in flux then
        self.on_lab_gone = on_lab_gone
        self.builder = node.record.builder  # a different one in lab.json: the lab was rebuilt
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._reported: tuple[str, ...] = ()
        self._repaired: tuple[str, ...] = ()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="svcwatch-lab-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def _run(self) -> None:
        while not self._stopping.wait(CHECK_SECONDS):
            try:
                if not self.check_once():
                    return
            except Exception as exc:  # noqa: BLE001 -- the monitor must outlive one bad check
                self._report(("check",), "warning", f"could not check the lab: {one_line(exc)}")

    def check_once(self) -> bool:
        """One round; False once the lab is gone (nothing left to watch)."""
        from svcwatch.lab.instances import load_record

        node = self.node
        record = load_record(node.state_root, node.spec.name)
        if record is None or record.builder != self.builder:
            self.on_lab_gone(
                f"lab {node.spec.name} was removed by `svcwatch lab down` while this svcwatch "
                "used it: probes and capture stopped"
            )
            return False
        if not self.is_controller() and self.take_control():
            self.notice("info", "this svcwatch now syncs the lab's rules (the one that did quit)")
        faults = self._faults()
        if faults is not None:
            self._handle(faults)
        return True

    def _faults(self) -> list[Fault] | None:
        """The lab's faults now; None while the session is syncing (the check would race it)."""
        controller = self.is_controller()
        if not self.sync_idle.acquire(blocking=False):
            return None
        try:
            return self.node.faults(rules=controller, rules_for=self.node.synced_slice)
        finally:
            self.sync_idle.release()

    def _handle(self, found: list[Fault]) -> None:
        from svcwatch.lab.health import REBUILD

        texts = tuple(f.text for f in found)
        name = self.node.spec.name
        if not found:
            if self._reported:  # repaired from outside (`lab up`): the diagnosis may move on
                self.notice("repaired", f"lab {name} is whole again")
            self._reported = self._repaired = ()
            return
        if texts == self._repaired:  # back right after a repair: something keeps breaking it
            self._report(texts, "drift", f"lab {name} keeps breaking: {summary(texts)}")
            return
        if any(f.fix == REBUILD for f in found):
            self._report(
                texts,
                "drift",
                f"lab {name} is broken: {texts[0]} (quit, then `svcwatch lab down --name {name}`)",
            )
            return
        try:
            done = self.node.repair(found, rules=self.is_controller())
        except Exception as exc:  # noqa: BLE001 -- say what is broken and why it stays so
            self._report(
                texts, "drift", f"lab {name} is broken: {summary(texts)}; repair failed: {exc}"
            )
            return
        if not done:  # gone by the time the lock was ours (a rollout retiring a pod, say)
            return
        self._reported, self._repaired = (), texts
        self.notice("repaired", f"lab {name} was broken ({summary(texts)}); {'; '.join(done)}")

    def _report(self, key: tuple[str, ...], kind: str, message: str) -> None:
        """Say it once per distinct problem, not every round."""
        if key != self._reported:
            self._reported = key
            self.notice(kind, message)


def summary(texts: tuple[str, ...], shown: int = 2) -> str:
    """The first faults and how many more: a Notice stays one readable line."""
    more = f" and {len(texts) - shown} more" if len(texts) > shown else ""
    return "; ".join(texts[:shown]) + more
