"""`svcwatch lab down` under a running dashboard: the diagnosis says the lab is gone, and the
chain's periodic read neither keeps trying nor toasts the same error every second (issue 11)."""

from __future__ import annotations

from textual.pilot import Pilot

from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.errors import InputError
from svcwatch.model.events import Notice
from svcwatch.ui.app import SvcwatchApp
from tests.ui.conftest import make_app, settle
from tests.ui.fakes import FakeSession

GONE = "labs/t1/service.yaml: not found (is the lab up?)"


class RemovedLab(FakeSession):
    """A lab whose files `lab down` removes while the dashboard shows it."""

    def __init__(self) -> None:
        super().__init__()
        self.removed = False
        self.chain_reads = 0

    def read_chain(self) -> ChainTree:
        self.chain_reads += 1
        if self.removed:
            raise InputError(GONE)
        return super().read_chain()


def error_toasts(app: SvcwatchApp) -> list[str]:
    return [n.message for n in app._notifications if n.severity == "error"]


async def ticks(app: SvcwatchApp, pilot: Pilot[None], seconds: int) -> None:
    """What the chain's one-second refresh does over `seconds` seconds."""
    for _ in range(seconds):
        app._refresh_counters()
        await settle(app, pilot)


async def lab_down(ended: bool) -> tuple[SvcwatchApp, int]:
    """The lab removed under a running 80x24 dashboard (`ended`: the session noticed and said
    so), then five seconds of refreshes: the app, and how many chain reads were tried after."""
    session = RemovedLab()
    app = make_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        session.removed = True
        if ended:
            notice = Notice(session._tick(), "ended", "lab t1 was removed by `svcwatch lab down`")
            session._emit([notice])
            await settle(app, pilot)
            assert "lab t1 was removed" in app.main.diagnosis.text
        reads = session.chain_reads
        await ticks(app, pilot, 5)
    return app, session.chain_reads - reads


async def test_a_failing_chain_read_is_toasted_once_not_every_second() -> None:
    app, reads = await lab_down(ended=False)
    assert reads == 5 and error_toasts(app) == [GONE]


async def test_after_lab_down_the_dashboard_stops_reading_the_lab() -> None:
    app, reads = await lab_down(ended=True)
    assert reads == 0 and error_toasts(app) == []
