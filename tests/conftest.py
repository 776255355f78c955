"""Shared fixtures: a real Streamlit server on loopback and a Playwright page in Debian's Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

# JavaScript: the Train page's "Step" metric as a number (null before it is drawn).
STEP_JS = """() => {
  for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
    const l = m.querySelector('[data-testid="stMetricLabel"]');
    if (l && l.innerText.trim() === 'Step') {
      const v = m.querySelector('[data-testid="stMetricValue"]');
      return v ? parseInt(v.innerText.replace(/[^0-9]/g, ''), 10) : null;
    }
  }
  return null;
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_streamlit(app: str = "app.py", env: dict | None = None, extra_args: tuple[str, ...] = (),
                    stderr_pipe: bool = False):
    """Start ``streamlit run`` on a free loopback port; return (process, url) once /_stcore/health answers.

    Also used by scripts/measure_ui.py and the load tests (``extra_args`` for e.g. the session TTL). The
    server's log goes to a temporary file, which never fills up and blocks the server as an unread pipe
    would; ``stderr_pipe=True`` gives a pipe instead, for a caller that reads it all the time.
    """
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log = subprocess.PIPE if stderr_pipe else tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", app, "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none", *extra_args],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, **(env or {})},
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            if stderr_pipe:
                text = proc.stderr.read()
            else:
                log.seek(0)
                text = log.read()
            raise RuntimeError(f"streamlit exited: {text.decode(errors='replace')[-2000:]}")
        try:
            if urllib.request.urlopen(url + "_stcore/health", timeout=1).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("streamlit did not become healthy within 60 s")


def stop_streamlit(proc: subprocess.Popen | None) -> None:
    """Stop a server from ``start_streamlit`` (terminate, then kill if it does not exit within 10 s)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="module")
def app_url():
    """URL of a fresh Streamlit server running app.py (one per test module)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    proc, url = start_streamlit()
    yield url
    stop_streamlit(proc)


@pytest.fixture(scope="module")
def browser():
    """A headless Debian Chromium driven by Playwright (skips when either is missing)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url):
    """A new page (own browser context, so its own Streamlit session) opened on the app and idle."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.goto(app_url)
    wait_idle(pg)
    yield pg
    ctx.close()


def wait_idle(pg, timeout: float = 60_000) -> None:
    """Wait until the Streamlit script has finished running."""
    pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)
