"""Actions are offered per session: a replay's footer, help and palette list only what works in
a replay, and a key that cannot act changes nothing on screen and says why in one line."""

from __future__ import annotations

from textual.widgets import Static

from svcwatch.record import DEMO_RECORDING
from svcwatch.session.replay import ReplaySession
from svcwatch.ui.app import SvcwatchApp
from svcwatch.ui.screens.help import HelpScreen
from tests.ui.conftest import make_app, settle
from tests.ui.fakes import FakeSession


def paused_demo() -> SvcwatchApp:
    replay = ReplaySession(DEMO_RECORDING, speed=1.0)
    replay.pause()
    return make_app(replay, clock=replay.now, t0=replay.recording.start_ts)


def screen_text(app: SvcwatchApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def notices(app: SvcwatchApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_a_replay_offers_only_what_works_in_a_replay() -> None:
    app = paused_demo()
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app, pilot)
        footer = screen_text(app).splitlines()[-1]
        assert "Edit slice" not in footer and " e " not in footer
        assert "1 Happy path" in footer and "? Help" in footer and "q Quit" in footer
        palette = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Happy path", "Wrong IP", "Step", "Faster"} <= palette
        assert not palette & {"Edit slice", "preStop", "Not ready", "Rollout race", "Proxy mode"}
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        keys = "\n".join(
            strip.text
            for strip in app.screen.query_one("#help-keys", Static).render_lines(
                app.screen.query_one("#help-keys", Static).region.reset_offset
            )
        )
        assert keys.count("space") == 1 and "torn down" not in keys and "Edit slice" not in keys
        assert "Not ready" not in keys and "Wrong IP" in keys


async def test_a_key_that_cannot_act_on_a_replay_changes_nothing_and_says_why() -> None:
    app = paused_demo()
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        before = (app.sub_title, app.main.slice_pane.border_title, app.main.diagnosis.text)
        for key, why in (
            ("5", "no not-ready scenario: this recording has happy, wrong-port, wrong-ip, mixed"),
            ("e", "the slice cannot be edited here: a replay shows what was recorded"),
            ("p", "the preStop replay needs the lab"),
            ("m", "switching kube-proxy's mode needs the lab"),
        ):
            app.clear_notifications()
            await pilot.press(key)
            await settle(app, pilot)
            after = (app.sub_title, app.main.slice_pane.border_title, app.main.diagnosis.text)
            assert after == before, key
            assert notices(app) == [why], key


async def test_a_live_lab_offers_its_faults_and_says_what_quit_does() -> None:
    app = make_app(FakeSession())
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app, pilot)
        assert "e Edit slice" in screen_text(app).splitlines()[-1]
        palette = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Edit slice", "Not ready", "Rollout race"} <= palette
        assert not palette & {"Step", "Faster"}
