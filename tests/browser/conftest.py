"""Browser tests: Debian's Chromium, driven by Selenium through Debian's chromedriver, against
the console of a local stack. Each journey saves a screenshot under artifacts/browser/."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, Stack, start_stack

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOTS = ROOT / "artifacts" / "browser"


@dataclass
class Console:
    stack: Stack
    link: str
    url: str


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    work = tmp_path_factory.mktemp("console-stack")
    proc, info = start_stack(work, "--backoff-scale", "0.02")
    link = info["console"]
    yield Console(
        Stack(info["api"], info["token"], info["moto"], info["ecs"], work),
        link,
        link.split("/?")[0],
    )
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def browser(console: Console) -> Iterator[Any]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail(
            "Chromium is not installed: `make browser-deps` (apt-get install chromium "
            "chromium-driver) installs it; CI does"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # This machine's network is closed: no background or first-run connections.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    driver.get(console.link)  # the printed link is the login
    yield driver
    driver.quit()


def save_shot(browser: Any, name: str) -> Path:
    """A screenshot of the page as it is now, under artifacts/browser/ (a CI artifact)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    browser.save_screenshot(str(path))
    print(f"screenshot: {path}")  # shown with -s, and in a failure's report
    return path


@pytest.fixture
def shot(browser: Any, request: pytest.FixtureRequest) -> Iterator[None]:
    """A screenshot of the page as the journey left it."""
    yield
    save_shot(browser, request.node.name)


STARTED = time.time()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    # Read from disk: under xdist the journeys ran in worker processes.
    saved = (
        [p for p in SHOTS.glob("*.png") if p.stat().st_mtime >= STARTED] if SHOTS.exists() else []
    )
    if saved:
        terminalreporter.write_line(f"browser screenshots ({len(saved)}): {SHOTS}")
        for path in sorted(saved):
            terminalreporter.write_line(f"  {path}")
