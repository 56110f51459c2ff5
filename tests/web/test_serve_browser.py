"""`svcwatch serve` for real: headless Chromium loads the page, sees the dashboard, presses `2`.

The server runs as a user would start it (a subprocess on a free loopback port) and serves a replay
of the bundled demo recording, so no root and no lab are needed; `2` jumps to the wrong-port
moment, whose probes are refused. xterm.js draws on a canvas, so the test reads the terminal's
text through xterm's public buffer API: a script injected before the page's own code notes the
Terminal object when textual-serve's client stores it. Needs the Debian packages chromium and
chromium-driver and the PyPI package selenium; skipped (saying which is missing) without them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
PANE_TITLES = ("iptables chain", "EndpointSlice", "probes", "packets")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1600,1000",
)
# Keep the Terminal object textual-serve's client assigns to `this.terminal`, for reading its text.
CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  get() { return undefined; },
  set(value) {
    Object.defineProperty(this, "terminal", {value, writable: true, configurable: true});
    if (value && value.buffer && !window.__svcwatchTerminal) window.__svcwatchTerminal = value;
  },
});
"""
SCREEN_TEXT = """
const term = window.__svcwatchTerminal;
if (!term) return "";
const buffer = term.buffer.active, rows = [];
for (let i = 0; i < term.rows; i++) {
  const line = buffer.getLine(buffer.viewportY + i);
  rows.push(line ? line.translateToString(true) : "");
}
return rows.join("\\n");
"""

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs headless Chromium: apt-get install chromium chromium-driver",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Any, what: str, timeout: float = 60.0) -> Any:
    """Poll `check()` until it returns something truthy; fail naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_server(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    env = {**os.environ, "SVCWATCH_STATE_DIR": str(tmp_path / "state")}
    argv = [sys.executable, "-m", "svcwatch", "serve", "--port", str(port), *args]
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc, port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    proc, port = start_server(tmp_path, "--demo")
    try:
        wait_until(lambda: accepts(port) or proc.poll() is not None, "the server to listen")
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(CHROMEDRIVER))
    try:
        # The page links a Google font; offline, that request must fail fast, not hang onload.
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*fonts.googleapis.com*"]})
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CATCH_TERMINAL})
        yield driver
    finally:
        driver.quit()


@needs_chromium
def test_the_browser_shows_the_dashboard_and_key_2_refuses(server: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server)
    screen = wait_until(
        lambda: (
            (text := browser.execute_script(SCREEN_TEXT))
            and all(title in text for title in (*PANE_TITLES, "replay of"))
            and text
        ),
        "the four pane titles and the replay's title",
    )
    assert "demo.svcrec.gz" in screen
    keyboard = browser.find_element(By.CSS_SELECTOR, ".xterm-helper-textarea")
    keyboard.send_keys("2")
    screen = wait_until(
        lambda: "connection refused" in (text := browser.execute_script(SCREEN_TEXT)) and text,
        "a refused probe after pressing 2",
    )
    assert "scenario: Wrong port (2)" in screen


def serve_argv(*args: str) -> list[str]:
    from svcwatch.cli.serve import serve, served_argv

    ctx = serve.make_context("serve", list(args))
    return served_argv(ctx, ctx.params["demo"], ctx.params["replay_file"])


def test_dashboard_flags_pass_through_to_each_tab(tmp_path: Path) -> None:
    script = tmp_path / "talk.yaml"
    script.write_text("- happy\n- wrong-port\n")
    args = ["--captions", "--script", str(script), "--theme", "svcwatch-projector", "--cluster"]
    assert serve_argv(*args, "--context", "k3d-demo") == [
        "--cluster", "--context", "k3d-demo", "--theme", "svcwatch-projector",
        "--captions", "--script", str(script),
    ]  # fmt: skip
    assert serve_argv("--demo", "--theme", "svcwatch-light") == [
        "replay", "--demo", "--theme", "svcwatch-light",
    ]  # fmt: skip
    # Each tab's dashboard builds (or reuses) the lab in the mode asked for.
    assert serve_argv("--proxy-mode", "nftables", "--name", "talk") == [
        "--name", "talk", "--proxy-mode", "nftables",
    ]  # fmt: skip


def test_flags_a_replay_cannot_use_are_one_line_errors(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "svcwatch", "serve", "--demo", "--sync-delay", "1"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "svcwatch: error: --sync-delay does not apply to a replay (it takes only --theme)"
    ]


def test_a_non_loopback_address_is_served_with_a_warning(tmp_path: Path) -> None:
    proc, port = start_server(tmp_path, "--host", "0.0.0.0", "--demo")
    try:
        wait_until(lambda: accepts(port) or proc.poll() is not None, "the server to listen")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    first = (tmp_path / "serve.log").read_text().splitlines()[0]
    assert first.startswith(f"svcwatch: warning: serving on 0.0.0.0:{port}, not loopback: ")
    assert "drives this machine's svcwatch" in first and "ssh -L" in first


CELL_COLOURS = """
const term = window.__svcwatchTerminal, buffer = term.buffer.active, counts = {bg: {}, fg: {}};
for (let y = 0; y < term.rows; y++) {
  const line = buffer.getLine(buffer.viewportY + y);
  for (let x = 0; x < term.cols; x++) {
    const cell = line.getCell(x);
    if (!cell.isBgDefault()) counts.bg[cell.getBgColor()] = (counts.bg[cell.getBgColor()] || 0) + 1;
    if (cell.getChars().trim() && !cell.isFgDefault())
      counts.fg[cell.getFgColor()] = (counts.fg[cell.getFgColor()] || 0) + 1;
  }
}
return counts;
"""


def light_share(counts: dict[str, int]) -> float:
    """The share of cells whose colour (xterm's 0xRRGGBB) is light."""

    def light(rgb: int) -> bool:
        r, g, b = rgb >> 16, (rgb >> 8) & 0xFF, rgb & 0xFF
        return 0.2126 * r + 0.7152 * g + 0.0722 * b > 160

    total = sum(counts.values()) or 1
    return sum(n for colour, n in counts.items() if light(int(colour))) / total


@needs_chromium
def test_t_to_the_light_theme_gives_the_browser_a_light_background(
    server: str, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server)
    wait_until(lambda: "replay of" in (browser.execute_script(SCREEN_TEXT) or ""), "the dashboard")
    assert light_share(browser.execute_script(CELL_COLOURS)["bg"]) < 0.1  # svcwatch-dark
    browser.find_element(By.CSS_SELECTOR, ".xterm-helper-textarea").send_keys("t")
    wait_until(
        lambda: light_share(browser.execute_script(CELL_COLOURS)["bg"]) > 0.95,
        "a light background on (nearly) every cell after t",
    )
    text = browser.execute_script(CELL_COLOURS)["fg"]
    assert light_share(text) < 0.2  # and the text on it is dark enough to read
