"""The demo page in headless Chromium: `gem-rag demo` on a tiny corpus, ask a question, see answer and sources."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from test_server_api import write_tiny_corpus
from test_server_cli import isolated_cache

SCRIPT = Path(__file__).resolve().parents[1] / "demos" / "screenshot.py"
spec = importlib.util.spec_from_file_location("demo_screenshot", SCRIPT)
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)

pytestmark = pytest.mark.skipif(demo.chromium_paths() is None,
                                reason="Debian's chromium and chromium-driver are not installed "
                                       "(apt-get install chromium chromium-driver)")


def test_demo_page_answers_with_sources(tmp_path):
    pytest.importorskip("selenium")
    docs = write_tiny_corpus(tmp_path / "docs")
    process, url = demo.start_demo(["--docs", str(docs)], env=isolated_cache(tmp_path), timeout=300)
    try:
        assert url.startswith("http://127.0.0.1:")
        browser = demo.open_browser(str(tmp_path / "profile"))
        try:
            shown = demo.ask_on_page(browser, url, "When is the Quillby lantern festival held?", timeout=300)
            demo.fit_to_page(browser)
            assert browser.save_screenshot(str(tmp_path / "page.png"))
        finally:
            browser.quit()
    finally:
        demo.stop(process)
    assert "March" in shown["answer"], shown
    assert shown["sources"] and shown["sources"][0] == ("The Quillby lantern festival", shown["sources"][0][1])
    assert shown["sources"][0][1].endswith("quillby.md")
    assert shown["answered_from"] == ["The Quillby lantern festival"]  # the chunk the answer was read from
    assert "ready" in shown["status"] and "total" in shown["timings"]
    assert (tmp_path / "page.png").stat().st_size > 10_000
