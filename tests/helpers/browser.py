"""Headless Chromium for the browser tests (selenium + Debian's chromium and
chromium-driver): ``MISSING`` names what is absent, ``browser`` is the fixture."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
MISSING = [
    name
    for name, found in (
        ("chromium (apt-get install chromium)", CHROMIUM),
        ("chromedriver (apt-get install chromium-driver)", CHROMEDRIVER),
        ("selenium (pip install selenium)", importlib.util.find_spec("selenium")),
    )
    if not found
]


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="blazeasgi-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM or ""
        for arg in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--no-proxy-server",  # straight to 127.0.0.1, whatever the environment says
            f"--user-data-dir={profile}",
            "--window-size=1000,900",
        ):
            options.add_argument(arg)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            driver.set_page_load_timeout(20)
            yield driver
        finally:
            driver.quit()
