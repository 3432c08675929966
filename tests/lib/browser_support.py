"""Browser-test support: a live WSGI server in a thread, Debian's chromium through Playwright,
a traffic recorder and a generic "answer what is visible" helper for the mobile form."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from werkzeug.serving import WSGIRequestHandler, make_server

CHROMIUM = os.environ.get("SURVEY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
PHONE_VIEWPORT = {"width": 360, "height": 740}


class QuietHandler(WSGIRequestHandler):
    """No access log lines (they would carry form tokens in the paths)."""

    def log_request(self, *args, **kwargs) -> None:
        pass


class LiveServer:
    """The app behind a real threaded HTTP server on 127.0.0.1 (port chosen by the OS)."""

    def __init__(self, app) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True,
                                   request_handler=QuietHandler)
        self.host = f"127.0.0.1:{self._server.server_port}"
        self.url = f"http://{self.host}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass
class Transfer:
    """One finished request: where it went and how many bytes came back."""

    url: str
    status: int
    body: int
    headers: int


@dataclass
class TrafficRecorder:
    """Every request a page makes; `take()` returns (and forgets) those since the last call."""

    transfers: list[Transfer] = field(default_factory=list)
    hosts: set[str] = field(default_factory=set)
    pending: set[int] = field(default_factory=set)

    def attach(self, page) -> TrafficRecorder:
        """Listen to `page` (requests started, finished or failed)."""
        self._page = page
        page.on("request", self._started)
        page.on("requestfinished", self._finished)
        page.on("requestfailed", lambda req: self.pending.discard(id(req)))
        return self

    def _started(self, req) -> None:
        self.hosts.add(urlsplit(req.url).netloc)
        self.pending.add(id(req))

    def _finished(self, req) -> None:
        self.pending.discard(id(req))
        sizes = req.sizes()
        resp = req.response()
        self.transfers.append(Transfer(req.url, resp.status if resp else 0,
                                       sizes["responseBodySize"], sizes["responseHeadersSize"]))

    def take(self, settle_ms: int = 3000) -> list[Transfer]:
        """The transfers of the page load(s) since the last call, once every started request
        has finished (their events can arrive after the page's load event)."""
        waited = 0
        while (self.pending or not self.transfers) and waited < settle_ms:
            self._page.wait_for_timeout(25)  # lets the sync API deliver pending events
            waited += 25
        done, self.transfers = self.transfers, []
        return done


DESCRIBE_QUESTIONS_JS = """fieldsets => fieldsets
  .filter((fs) => fs.getClientRects().length > 0)
  .map((fs) => {
    const inputs = [...fs.querySelectorAll('input, textarea')];
    return {id: fs.id.slice(2), type: inputs.length ? (inputs[0].type || 'textarea') : 'none',
            values: inputs.map((el) => el.value)};
  })"""

MEASURE_TARGETS_JS = """els => els
  .filter((el) => el.getClientRects().length > 0)
  .map((el) => [(el.textContent || el.name || '').trim().slice(0, 30),
                el.getBoundingClientRect().height])"""


def answer_visible_questions(page, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Answer every visible question of the current form page like a respondent would
    (tapping option labels, typing text) and return {question id: answer given}.

    Choice questions get the second-to-last option (the first when only one), unless
    `overrides` names an option code; multi-choice questions get their first option.
    The page is read through the Playwright protocol, so this works with page scripts off."""
    overrides = overrides or {}
    given: dict[str, str] = {}
    for spec in page.locator("fieldset.q").evaluate_all(DESCRIBE_QUESTIONS_JS):
        qid, kind, values = spec["id"], spec["type"], spec["values"]
        box = page.locator(f"#q-{qid}")
        if kind in ("radio", "checkbox"):
            default = values[-2] if kind == "radio" and len(values) > 1 else values[0]
            code = overrides.get(qid) or default
            box.locator(f'label.opt:has(input[value="{code}"])').click()
            given[qid] = code
        elif kind == "number":
            given[qid] = overrides.get(qid, "1")
            box.locator("input").fill(given[qid])
        elif kind == "textarea":
            given[qid] = overrides.get(qid, "Thủ tục nhanh, cán bộ nhiệt tình.")
            box.locator("textarea").fill(given[qid])
    return given


def layout_problems(page, width: int = PHONE_VIEWPORT["width"], min_target: float = 44.0
                    ) -> list[str]:
    """Horizontal overflow and too-small touch targets (option labels, buttons, text inputs)
    on the current page; empty when fine."""
    problems: list[str] = []
    scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
    if scroll_width > width:
        problems.append(f"horizontal scroll: scrollWidth {scroll_width} > {width}")
    targets = page.locator("label.opt, button, input[type=text]")
    for name, height in targets.evaluate_all(MEASURE_TARGETS_JS):
        if height < min_target:
            problems.append(f"touch target {name!r} is {height:.0f}px tall")
    return problems
