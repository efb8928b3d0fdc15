"""Start `gem-rag demo`, ask a question on its page in headless Chromium, and save a screenshot.

Needs Debian's chromium and chromium-driver (`apt-get install chromium chromium-driver`) and selenium.
The browser test (tests/test_demo_browser.py) drives the page with the same functions.

    .venv/bin/python demos/screenshot.py --out docs/demo.png --question "How do I create a virtual environment?"
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]
READY_LINE = re.compile(r"open (http://\S+) in your browser")


def chromium_paths() -> tuple[str, str] | None:
    """(chromium, chromedriver) executables, or None when either is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def start_demo(extra_args: list[str], env: dict | None = None, timeout: float = 900) -> tuple[subprocess.Popen, str]:
    """Run `gem-rag demo --port 0 ...` and wait for the URL it prints -> (process, url)."""
    command = [sys.executable, "-m", "gem_rag.cli", "demo", "--port", "0", *extra_args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + timeout
    lines = []
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"gem-rag demo exited with {process.wait()}:\n{''.join(lines)}")
        lines.append(line)
        match = READY_LINE.search(line)
        if match:  # keep reading its output, so the pipe never fills and blocks the server
            threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
            return process, match.group(1)
    process.terminate()
    raise TimeoutError(f"gem-rag demo printed no URL within {timeout} s:\n{''.join(lines)}")


def _drain(stream) -> None:
    for _ in stream:
        pass


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def open_browser(profile: str, width: int = 1000, height: int = 1300):
    """A headless Chromium driven by selenium, with a fresh profile folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}", f"--window-size={width},{height}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def ask_on_page(browser, url: str, question: str, timeout: float = 300) -> dict:
    """Open the page, ask ``question``, wait for the finished answer -> what the page shows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    if browser.current_url.split("?")[0].rstrip("/") != url.rstrip("/"):
        browser.get(url)
    wait = WebDriverWait(browser, timeout)
    wait.until(lambda b: b.find_element(By.ID, "status").get_attribute("data-state") == "ready")
    wait.until(lambda b: b.find_element(By.ID, "ask-button").is_enabled())
    box = browser.find_element(By.ID, "question")
    box.clear()
    box.send_keys(question)
    browser.find_element(By.ID, "ask-button").click()
    wait.until(lambda b: b.find_element(By.ID, "answer").get_attribute("data-done") == "true"
               or b.find_element(By.ID, "error").is_displayed())
    if browser.find_element(By.ID, "error").is_displayed():
        raise RuntimeError(browser.find_element(By.ID, "error").text)
    badge = browser.find_element(By.ID, "consistency")
    return {
        "answer": browser.find_element(By.ID, "answer").text,
        "sources": [(s.find_element(By.CLASS_NAME, "source-title").text,
                     s.find_element(By.CLASS_NAME, "source-path").text) for s in
                    browser.find_elements(By.CSS_SELECTOR, "#sources li.source")],
        "answered_from": [s.find_element(By.CLASS_NAME, "source-title").text for s in
                          browser.find_elements(By.CSS_SELECTOR, "#sources li.source.answered")],
        "support": [q.text for q in browser.find_elements(By.CSS_SELECTOR, "#support > *")],
        "highlights": [m.get_attribute("textContent") for m in browser.find_elements(By.CSS_SELECTOR, "#sources mark")],
        "consistency": badge.text if badge.is_displayed() else None,
        "timings": browser.find_element(By.ID, "timings").text,
        "status": browser.find_element(By.ID, "status-text").text,
    }


def fit_to_page(browser) -> None:
    """Resize the window to the page's full height, so a screenshot shows all of it."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    width = browser.get_window_size()["width"]
    browser.set_window_size(width, height + 120)  # + the headless window chrome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/demo.png"))
    parser.add_argument("--question", default="How do I create a virtual environment?")
    parser.add_argument("--docs", type=Path, help="index these documents instead of the bundled corpus")
    args = parser.parse_args()
    if chromium_paths() is None:
        print("chromium and chromedriver are needed: apt-get install chromium chromium-driver", file=sys.stderr)
        return 1
    process, url = start_demo(["--docs", str(args.docs)] if args.docs else [], env=os.environ.copy())
    try:
        with tempfile.TemporaryDirectory() as profile:
            browser = open_browser(profile)
            try:
                shown = ask_on_page(browser, url, args.question)
                fit_to_page(browser)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                browser.save_screenshot(str(args.out))
            finally:
                browser.quit()
    finally:
        stop(process)
    print(f"answer: {shown['answer']!r}\nsources: {shown['sources']}\nconsistency: {shown['consistency']}\n"
          f"timings: {shown['timings']}\nscreenshot: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
