"""Headless Chromium (Debian's package) driven by Playwright, for every browser test.

Every page a test opens reports what the Content-Security-Policy blocked (the
document's ``securitypolicyviolation`` events, and console messages naming the
policy); a test after which anything was blocked fails at teardown.
"""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

# Injected by Playwright before any of the page's own content, so it sees
# violations during parsing too; the binding is outside the page's CSP.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(`${event.violatedDirective} blocked `
    + `${event.blockedURI || "inline"} on ${location.href}`);
});
"""


class WatchedBrowser:
    """The browser, whose contexts and pages report every CSP violation."""

    def __init__(self, browser) -> None:
        self._browser = browser
        self.csp_violations: list[str] = []

    def __getattr__(self, name: str):
        return getattr(self._browser, name)

    def _watch(self, context) -> None:
        context.expose_binding("reportCspViolation",
                               lambda _source, text: self.csp_violations.append(text))
        context.add_init_script(REPORT_VIOLATIONS)
        context.on("console", self._console)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.csp_violations.append(f"console: {message.text}")

    def new_context(self, **kwargs):
        context = self._browser.new_context(**kwargs)
        self._watch(context)
        return context

    def new_page(self, **kwargs):
        page = self._browser.new_page(**kwargs)  # its own context, closed with it
        self._watch(page.context)
        return page


@pytest.fixture(scope="module")
def chromium():
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is required: run scripts/install-system-deps",
                    pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser(chromium):
    watched = WatchedBrowser(chromium)
    yield watched
    assert watched.csp_violations == [], "the CSP blocked something"
