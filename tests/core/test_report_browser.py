"""The HTML run report as a person sees it: opened in headless Chromium, looked at, and read back from the DOM.

Chromium is driven over the Chrome DevTools Protocol on a pipe (``--remote-debugging-pipe``:
JSON messages separated by NUL bytes on file descriptors 3 and 4), which needs nothing
beyond the standard library: no Selenium, Playwright or websocket client. Every request
the page makes, every failed load, console message and script error is recorded, so
"nothing failed to load" is checked, not assumed. Tests that need Chromium (Debian's
``chromium`` package) or Graphviz skip without them, and fail instead when
CASCADE_REQUIRE_BROWSER=1 (as .ci/run sets).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REQUIRE_ENV = "CASCADE_REQUIRE_BROWSER"
FLAGS = [
    "--headless",
    "--no-sandbox",  # as root in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # the machine has no network: no lookups at start
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]

FLOW = """
import os

import cascade_core as cs


@cs.task(cache=True)
def fetch(i: int) -> int:
    return i


@cs.task(retries=2)
def square(x: int) -> int:
    if x == 1 and os.path.exists("flaky.flag"):  # fails twice, then works
        with open("tries", "a") as tries:
            tries.write("x")
        if os.path.getsize("tries") < 3:
            raise RuntimeError("flaky")
    if os.path.exists("fail.flag") and x == 2:
        raise ValueError('<b>bad</b> input & "quotes": ' + "x" * 300)
    return x * x


@cs.task
def total(xs: list) -> int:
    return sum(xs)


def pipeline(n: int = 5):
    return total([square(fetch(i)) for i in range(n)])
"""


def need(program: str, package: str) -> str:
    found = shutil.which(program)
    if found is None:
        message = f"{program} is not on PATH (Debian package {package})"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message}; {REQUIRE_ENV}=1 requires it", pytrace=False)
        pytest.skip(message)
    return found


# Puts the pipe's ends on the descriptors Chromium reads (3) and writes (4), then becomes Chromium.
TRAMPOLINE = """
import os, sys
reader, writer = int(sys.argv[1]), int(sys.argv[2])
os.dup2(reader, 3)
os.dup2(writer, 4)
os.close(reader)
os.close(writer)
os.execv(sys.argv[3], sys.argv[3:])
"""


class Browser:
    """One headless Chromium and one page, driven over the DevTools protocol on a pipe."""

    def __init__(self, binary: str, profile: Path, width: int = 1280, height: int = 900) -> None:
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # Above 4, so that moving them to 3 and 4 in the child cannot overwrite one with the other.
        keep = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w)]
        for fd in (to_chrome_r, from_chrome_w):
            os.close(fd)
        args = [*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"]
        self.process = subprocess.Popen(
            [sys.executable, "-c", TRAMPOLINE, str(keep[0]), str(keep[1]), binary, *args],
            pass_fds=keep,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fd in keep:
            os.close(fd)
        self.writer, self.reader = to_chrome_w, from_chrome_r
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session = ""
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Network", "Runtime", "Log"):
                self.call(f"{domain}.enable")
            metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
            self.call("Emulation.setDeviceMetricsOverride", **metrics)
        except BaseException:
            self.close()
            raise

    def call(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        os.write(self.writer, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive(timeout)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise AssertionError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, event: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = len(self.events)
        while True:
            for message in self.events[seen:]:
                if message["method"] == event:
                    return message
            seen = len(self.events)
            self.events.append(self._receive(deadline - time.monotonic()))

    def _receive(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.reader], [], [], left)[0]:
                raise AssertionError("Chromium did not answer in time")
            chunk = os.read(self.reader, 1 << 20)
            if not chunk:
                raise AssertionError(f"Chromium exited (code {self.process.poll()})")
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def screenshot(self, path: Path) -> bytes:
        """The whole page (not only the window), as a PNG written to ``path``."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        data = self.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        )["data"]
        png = base64.b64decode(data)
        path.write_bytes(png)
        return png

    def problems(self) -> list[str]:
        """Everything that went wrong while loading: failed or foreign requests, errors, console output."""
        found = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Network.requestWillBeSent" and not params["request"]["url"].startswith("file://"):
                found.append(f"request to {params['request']['url']}")
            elif method == "Network.loadingFailed":
                found.append(f"load failed: {params.get('errorText')} {params.get('blockedReason', '')}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"script error: {params['exceptionDetails'].get('text')}")
            elif method == "Runtime.consoleAPICalled":
                found.append(f"console.{params.get('type')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                found.append(f"log: {params['entry']['text']}")
        return found

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.call("Browser.close", timeout=10)
            except (AssertionError, OSError):
                pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.writer)
        os.close(self.reader)


@pytest.fixture
def browser(tmp_path: Path):
    binary = need("chromium", "chromium")
    page = Browser(binary, tmp_path / "profile")
    try:
        yield page
    finally:
        page.close()


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CASCADE_STATE", "CASCADE_CACHE")}
    return subprocess.run(
        [sys.executable, "-m", "cascade_core", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


STATE = "sqlite:///runs.db"
STORE = ["--state", STATE, "--cache", STATE]
FACTS = """(() => {
  const bars = [...document.querySelectorAll('#timeline .timeline .bar')];
  const svg = document.querySelector('#graph svg');
  return {
    bars: bars.length,
    thin: bars.filter(b => b.getBoundingClientRect().width < 8 || b.getBoundingClientRect().height < 8).length,
    retries: [...document.querySelectorAll('#timeline .retry')].map(r => Math.round(r.getBoundingClientRect().width)),
    edges: svg ? svg.querySelectorAll('g.edge').length : 0,
    columns: svg ? new Set([...svg.querySelectorAll('g.node')]
      .filter(g => /^n\\d+$/.test(g.querySelector('title').textContent))
      .map(g => { const r = g.getBoundingClientRect(); return Math.round((r.left + r.right) / 20); })).size : 0,
    resume: (document.querySelector('.failure .resume') || {}).textContent || '',
    text: document.body.innerText,
    barStatuses: bars.map(b => [...b.classList].find(c => c.startsWith('s-'))),
    declared: Number(document.querySelector('.timeline').dataset.bars),
    rows: document.querySelectorAll('#tasks tr.task').length,
    svgNodes: svg ? [...svg.querySelectorAll('g.node > title')].filter(t => /^n\\d+$/.test(t.textContent)).length : 0,
    svgWidth: svg ? svg.getBoundingClientRect().width : 0,
    mermaid: !!document.querySelector('pre.mermaid-source'),
    images: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length,
    scripts: document.scripts.length,
    failure: (document.querySelector('.failure') || {}).textContent || '',
    title: document.title,
    overflow: document.documentElement.scrollWidth > window.innerWidth,
  };
})()"""


def keep(screenshot: Path, name: str) -> None:
    """Copy a screenshot to $CASCADE_SCREENSHOTS (a directory), for a person to look at."""
    directory = os.environ.get("CASCADE_SCREENSHOTS")
    if directory:
        shutil.copy(screenshot, Path(directory) / f"report-{name}.png")


def look(browser: Browser, page: Path, name: str) -> dict[str, Any]:
    """Open ``page`` and read its facts; keep a screenshot. Nothing on it may fail to load."""
    browser.open(page.as_uri())
    facts = browser.evaluate(FACTS)
    png = browser.screenshot(page.with_suffix(".png"))
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    keep(page.with_suffix(".png"), name)
    assert browser.problems() == []
    return facts


@pytest.fixture
def resumed_run(tmp_path: Path) -> Path:
    """Run ``r`` of 11 tasks: failed once in one ``square``, then resumed."""
    (tmp_path / "flow.py").write_text(FLOW)
    (tmp_path / "fail.flag").write_text("")
    assert cli(tmp_path, "run", "flow.py:pipeline", *STORE, "--run-id", "r", "--no-progress").returncode == 1
    (tmp_path / "fail.flag").unlink()
    done = cli(tmp_path, "run", "flow.py:pipeline", *STORE, "--run-id", "r", "--no-progress")
    assert done.returncode == 0, done.stderr
    return tmp_path


def test_the_report_of_a_resumed_run_in_chromium(resumed_run, browser):
    need("dot", "graphviz")
    flow = resumed_run
    done = cli(flow, "runs", "show", "r", "--state", STATE, "--html", "report.html", "--target", "flow.py:pipeline")
    assert done.returncode == 0, done.stderr
    facts = look(browser, flow / "report.html", "resumed")
    assert facts["bars"] == facts["declared"] == facts["rows"] == 11  # one bar and one row per task
    assert facts["thin"] == 0  # every bar can be seen, even one of a task that took no time
    assert sorted(facts["barStatuses"]) == ["s-executed"] * 2 + ["s-resumed"] * 9
    assert facts["svgNodes"] == 11 and facts["svgWidth"] > 200 and not facts["mermaid"]
    assert facts["images"] == 0 and facts["scripts"] == 0 and not facts["overflow"]
    assert facts["title"] == "Cascade run r: succeeded"


def test_the_report_of_a_failed_run_collapses_its_timeline_and_renders_without_dot(tmp_path, browser):
    (tmp_path / "flow.py").write_text(FLOW)
    (tmp_path / "fail.flag").write_text("")
    run = cli(tmp_path, "run", "flow.py:pipeline", *STORE, "--run-id", "big", "-p", "n=150", "--no-progress")
    assert run.returncode == 1  # 301 tasks: 150 fetch, 149 square done and one failed, total skipped
    no_dot = tmp_path / "bin"
    no_dot.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CASCADE_STATE", "CASCADE_CACHE")}
    env["PATH"] = str(no_dot)
    done = subprocess.run(
        [sys.executable, "-m", "cascade_core", "runs", "show", "big", "--state", STATE, "--html", "report.html"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    facts = look(browser, tmp_path / "report.html", "failed-collapsed-no-dot")
    # Above 200 tasks the timeline has one bar per task name; the table keeps one row per task.
    assert facts["bars"] == facts["declared"] == 3 and facts["rows"] == 301
    assert sorted(facts["barStatuses"]) == ["s-executed", "s-failed", "s-skipped"]
    assert facts["mermaid"] and facts["svgNodes"] == 0 and not facts["overflow"]
    assert '<b>bad</b> input & "quotes"' in facts["failure"]  # shown as text, not markup
    assert facts["resume"].endswith(" --param n=150 --state sqlite:///runs.db --cache sqlite:///runs.db --run-id big")
    assert 'n0 -->|"×150"| n1' in facts["text"]  # the stored edges, in the Mermaid source
    assert facts["title"] == "Cascade run big: failed"


def test_the_report_of_a_run_alone_draws_its_graph_retries_and_resume_command(tmp_path, browser):
    need("dot", "graphviz")
    (tmp_path / "flow.py").write_text(FLOW)
    assert cli(tmp_path, "run", "flow.py:pipeline", *STORE, "--run-id", "warm", "--no-progress").returncode == 0
    (tmp_path / "flaky.flag").write_text("")
    (tmp_path / "fail.flag").write_text("")
    run = cli(tmp_path, "run", "flow.py:pipeline", *STORE, "--run-id", "r", "--no-progress")
    assert run.returncode == 1 and (tmp_path / "tries").read_text() == "xxx"  # square(1) ran three times
    resume = next(line for line in run.stderr.splitlines() if line.startswith("to resume: "))
    done = cli(tmp_path, "runs", "show", "r", "--state", STATE, "--html", "report.html")  # no --target
    assert done.returncode == 0, done.stderr
    facts = look(browser, tmp_path / "report.html", "run-alone-retries")
    # 5 fetch -> 5 square -> total: every edge drawn, in three columns, not one.
    assert facts["svgNodes"] == 11 and facts["edges"] == 10 and facts["columns"] == 3
    assert "not stored" not in facts["text"] and "not in the run" not in facts["text"]
    assert facts["resume"] == "To resume: " + resume.removeprefix("to resume: ")
    assert "run_id=" not in facts["failure"]
    assert sorted(facts["barStatuses"]) == ["s-cached"] * 5 + ["s-executed"] * 4 + ["s-failed", "s-skipped"]
    assert facts["thin"] == 0  # cache hits, the failure and the skip took no time, and can be seen
    assert len(facts["retries"]) == 4 and min(facts["retries"]) >= 8  # two failed attempts of two tasks
    assert "square · " in facts["text"] and facts["text"].count("↻3") == 2
    assert facts["rows"] == 11 and not facts["overflow"]


def test_the_checks_see_a_page_that_failed_to_load(tmp_path, browser):
    """The negative control: a broken image and a blocked network request are both reported."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><title>x</title><img src="missing.png"><img src="http://192.0.2.1/x.png">')
    browser.open(page.as_uri())
    problems = browser.problems()
    assert any(p.startswith("load failed") for p in problems) and "request to http://192.0.2.1/x.png" in problems


MAP_FLOW = """
import cascade_core as cs


@cs.task
def listing(n: int) -> list:
    return list(range(n))


@cs.task(cache=True)
def square(x: int) -> int:
    if x == 7:
        raise ValueError("seven")
    return x * x


@cs.task
def total(xs: list) -> int:
    return sum(xs)


def pipeline(n: int = 200):
    return total(square.map(listing(n)))
"""


def test_the_report_of_a_200_element_run_time_map_draws_one_box_with_its_outcomes(tmp_path, browser):
    need("dot", "graphviz")
    (tmp_path / "flow.py").write_text(MAP_FLOW)
    warm = cli(tmp_path, "run", "flow.py:pipeline", *STORE, "--run-id", "warm", "-p", "n=20", "--no-progress")
    assert warm.returncode == 1  # 19 calls cached for the next run; square(7) failed
    run = cli(tmp_path, "run", "flow.py:pipeline", *STORE, "--run-id", "m", "--no-progress")
    assert run.returncode == 1
    done = cli(tmp_path, "runs", "show", "m", "--state", STATE, "--html", "report.html")
    assert done.returncode == 0, done.stderr
    facts = look(browser, tmp_path / "report.html", "map-200")
    boxes = browser.evaluate(
        "[...document.querySelectorAll('#graph svg g.node')].map(g => g.textContent.replace(/\\s+/g, ' ').trim())"
    )
    # listing -> one box of 200 calls (19 cached, 180 executed, 1 failed) -> total, not 200 boxes.
    assert facts["svgNodes"] == 3 and facts["edges"] == 2 and facts["columns"] == 3
    box = next(text for text in boxes if "×200" in text)
    assert "square ×200" in box and "✓180" in box and "◆19" in box and "✗1" in box, boxes
    assert facts["rows"] == 203 and not facts["overflow"]
    assert "200 calls (180 executed, 19 cached, 1 failed)" in facts["text"]  # the summary, as runs show says it
    assert "tasks\n203" in facts["text"]  # the header counts the calls the map added
    assert "square.map ×1" in facts["text"] and "square ×200" in facts["text"]  # timeline rows: the map, its calls
