"""Headless Debian `chromium` driven over the Chrome DevTools Protocol: what every browser driver
of the live tests shares (starting the browser, a page's socket, evaluating, waiting, clicking,
typing, screenshots, extra tabs, and the run that always stops the browser and reports).

Needs only `websockets` (pinned in .ci/run).
"""

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

from websockets.asyncio.client import connect

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1440,1000",
    "--remote-debugging-port=0",
]
STEP_TIMEOUT = 30.0


class Browser:
    """One page target of a running chromium, spoken to over CDP."""

    def __init__(self, socket, port):
        self.socket = socket
        self.port = port
        self.ids = itertools.count(1)
        self.errors = []  # console errors and exceptions (a CSP violation shows up here)
        self.paused = []  # requests held by `Fetch` interception (Fetch.requestPaused)
        self.tabs = []  # further tabs opened with `open_tab`

    async def call(self, method, **params):
        call_id = next(self.ids)
        await self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(await self.socket.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.observe(message)

    def observe(self, message):
        method = message.get("method")
        params = message.get("params", {})
        if method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(params["entry"].get("text", ""))
        elif method == "Runtime.exceptionThrown":
            self.errors.append(params["exceptionDetails"].get("text", "exception"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
        elif method == "Fetch.requestPaused":
            self.paused.append(params)

    async def enable(self):
        for domain in ("Page", "Runtime", "Log"):
            await self.call(f"{domain}.enable")

    async def js(self, expression):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression, what, timeout=STEP_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.1)
        raise TimeoutError(f"timed out waiting for {what}")

    async def wait_paused(self, what, timeout=STEP_TIMEOUT):
        """A request held by `Fetch.enable` interception (events arrive while calls are made)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.paused:
                return self.paused.pop(0)
            await self.js("1")
            await asyncio.sleep(0.05)
        raise TimeoutError(f"timed out waiting for {what}")

    async def type_into(self, selector, text):
        """Focus the field, clear it, and type the way a keyboard would."""
        await self.js(f"(() => {{ const i = document.querySelector({json.dumps(selector)}); i.focus(); i.select(); }})()")
        await self.call("Input.insertText", text=text)

    async def click(self, selector):
        box = await self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView({{block: 'center'}});"
            " const r = e.getBoundingClientRect(); return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            await self.call("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left", clickCount=1)

    async def screenshot(self, path, selector=None):
        """The whole page, or only the element `selector` picks."""
        params = {"format": "png", "captureBeyondViewport": True}
        if selector:
            box = await self.js(
                f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                " return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height, scale: 1}; })()"
            )
            params["clip"] = box
        shot = await self.call("Page.captureScreenshot", **params)
        with open(path, "wb") as out:
            out.write(base64.b64decode(shot["data"]))

    async def open_tab(self):
        """Another tab of the same browser (its own sessionStorage, so its own sign-in)."""
        target = await self.call("Target.createTarget", url="about:blank")
        url = page_socket_url(self.port, target["targetId"])
        tab = Browser(await connect(url, max_size=None), self.port)
        await tab.enable()
        self.tabs.append(tab)
        return tab

    def all_errors(self):
        return self.errors + [e for tab in self.tabs for e in tab.all_errors()]

    async def close_tabs(self):
        for tab in self.tabs:
            await tab.close_tabs()
            await tab.socket.close()


def start_chromium(profile):
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    process = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port_file = os.path.join(profile, "DevToolsActivePort")
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        if os.path.exists(port_file):
            with open(port_file) as f:
                lines = f.read().split()
            if lines:
                return process, int(lines[0])
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode}")
        time.sleep(0.1)
    raise RuntimeError("chromium did not open its DevTools port")


def page_socket_url(port, target_id=None):
    """The DevTools socket of the first page, or of the page `target_id`."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
            pages = [t for t in json.load(response) if t.get("type") == "page"]
        pages = [p for p in pages if target_id is None or p.get("id") == target_id]
        if pages:
            return pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.1)
    raise RuntimeError("chromium has no page")


def stop(process):
    if process is None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


async def drive(exercise, failure_screenshot=None, expected_errors=()):
    """Run `exercise(browser, report)` on a fresh chromium; the report, with `ok`, `error` and the
    console errors other than those containing one of `expected_errors` (the browser logs every
    4xx answer, which some checks expect). The browser is stopped whatever happens."""
    report = {"ok": False}
    profile = tempfile.mkdtemp(prefix="loanflow-chromium-")
    process = None
    try:
        process, port = start_chromium(profile)
        async with connect(page_socket_url(port), max_size=None) as socket:
            browser = Browser(socket, port)
            try:
                await browser.enable()
                await exercise(browser, report)
                report["ok"] = True
            except Exception as error:
                report["error"] = repr(error)
                if failure_screenshot:
                    await browser.screenshot(failure_screenshot)
            finally:
                errors = browser.all_errors()
                report["console_errors"] = [e for e in errors if not any(x in e for x in expected_errors)]
                await browser.close_tabs()
    except Exception as error:
        report["error"] = repr(error)
    finally:
        stop(process)
        shutil.rmtree(profile, ignore_errors=True)
    return report


def say(line):
    """One JSON line on stdout, at once (the test reads them as they come)."""
    print(json.dumps(line), flush=True)
