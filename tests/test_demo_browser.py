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


LANTERNS = ("Making a lantern\n================\n\nTo make a lantern, fold the paper twice and run the lantern tool "
            "with the size of the paper::\n\n   lantern-tool --fold 2 --size a4\n\nThe tool prints the cutting plan.\n")


def test_demo_page_answers_with_sources_and_highlights(tmp_path):
    """Three questions on the page: a fact, a how-to (the command) and a definition, each with its supporting
    sentence quoted under the answer and highlighted in the passage it comes from."""
    pytest.importorskip("selenium")
    docs = write_tiny_corpus(tmp_path / "docs")
    (docs / "lanterns.rst").write_text(LANTERNS, encoding="utf-8")
    process, url = demo.start_demo(["--docs", str(docs)], env=isolated_cache(tmp_path), timeout=300)
    try:
        assert url.startswith("http://127.0.0.1:")
        browser = demo.open_browser(str(tmp_path / "profile"))
        try:
            fact = demo.ask_on_page(browser, url, "When is the Quillby lantern festival held?", timeout=300)
            howto = demo.ask_on_page(browser, url, "How do I make a lantern?", timeout=300)
            definition = demo.ask_on_page(browser, url, "What is Zorblax?", timeout=300)
            demo.fit_to_page(browser)
            assert browser.save_screenshot(str(tmp_path / "page.png"))
        finally:
            browser.quit()
    finally:
        demo.stop(process)
    assert "March" in fact["answer"], fact
    assert fact["sources"] and fact["sources"][0] == ("The Quillby lantern festival", fact["sources"][0][1])
    assert fact["sources"][0][1].endswith("quillby.md")
    assert fact["answered_from"] == ["The Quillby lantern festival"]  # the passage the answer was found in
    assert any("first Saturday of March" in h for h in fact["highlights"])  # its sentence, highlighted
    assert "ready" in fact["status"] and "total" in fact["timings"]
    assert howto["answer"] == "lantern-tool --fold 2 --size a4", howto
    assert any(q.startswith("To make a lantern") for q in howto["support"]) and "lantern-tool" in howto["support"][-1]
    assert any(h.startswith("To make a lantern") for h in howto["highlights"])
    assert definition["answer"].startswith("Zorblax is a card game"), definition
    assert definition["highlights"] == [definition["answer"]] and definition["answered_from"]
    assert (tmp_path / "page.png").stat().st_size > 10_000
