"""A minimal Chrome DevTools Protocol client for headless Chromium, standard library only.

Chromium started with ``--remote-debugging-pipe`` reads protocol commands (JSON, each ended by a
NUL byte) from file descriptor 3 and writes responses and events to descriptor 4. That is all a
test needs to load a page, run JavaScript in it, press keys, read the console and take
screenshots, without selenium, a chromedriver matching the browser's version, or a websocket
library (the project's test dependencies stay as they are; Debian's ``chromium`` is enough).

    with Browser() as browser:
        page = browser.new_page(offline=True)
        page.goto("file:///.../index.html")
        page.evaluate("document.title")

``Page.errors`` collects uncaught exceptions, ``console.error`` calls and browser log entries of
level error (a failed resource load among them); ``Page.requests`` every URL the page asked for.
"""

import base64
import json
import os
import signal
import subprocess
import tempfile
import threading
import time

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]
TIMEOUT = 60.0  # seconds for one protocol command


class ProtocolError(RuntimeError):
    pass


def available():
    return os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)


class Browser:
    """One headless Chromium process, driven over the DevTools pipe."""

    def __init__(self, chromium=CHROMIUM, extra_flags=()):
        self._profile = tempfile.TemporaryDirectory(prefix="convlab-cdp-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire_pipes():  # runs in the child before exec: the protocol's fixed descriptors
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self.proc = subprocess.Popen(
            [
                chromium,
                *FLAGS,
                *extra_flags,
                f"--user-data-dir={self._profile.name}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=wire_pipes,
            start_new_session=True,  # its own process group: closed with all its helpers
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._next_id = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._responses = {}
        self._listeners = {}  # sessionId -> callback(method, params)
        self._closed = False
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    # -- protocol plumbing

    def _read_loop(self):
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._cond:
                        self._responses[message["id"]] = message
                        self._cond.notify_all()
                else:
                    listener = self._listeners.get(message.get("sessionId"))
                    if listener:
                        listener(message["method"], message.get("params", {}))

    def send(self, method, params=None, session=None, timeout=TIMEOUT):
        """Send one command and wait for its result (a dict); a protocol error raises."""
        with self._lock:
            self._next_id += 1
            ident = self._next_id
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while ident not in self._responses:
                left = deadline - time.monotonic()
                if self._closed:
                    raise ProtocolError(f"chromium exited while waiting for {method}")
                if left <= 0:
                    raise ProtocolError(f"no answer to {method} within {timeout} s")
                self._cond.wait(left)
            response = self._responses.pop(ident)
        if "error" in response:
            raise ProtocolError(f"{method}: {response['error']}")
        return response.get("result", {})

    def new_page(self, offline=True, width=1400, height=1000, mobile=False):
        """A new tab; with ``offline`` every network request fails as with the cable pulled."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session)
        self._listeners[session] = page._event
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.send(f"{domain}.enable")
        if offline:
            page.send(
                "Network.emulateNetworkConditions",
                {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
            )
        page.set_viewport(width, height, mobile)
        return page

    def close(self):
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close", timeout=10)
                except ProtocolError:
                    pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
        finally:
            for fd in (self._to_child, self._from_child):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._profile.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Page:
    """One tab: navigation, JavaScript, keys, screenshots, and what went wrong in it."""

    def __init__(self, browser, session):
        self.browser = browser
        self.session = session
        self.errors = []
        self.requests = []
        self._loaded = threading.Event()

    def send(self, method, params=None, timeout=TIMEOUT):
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def _event(self, method, params):
        if method == "Page.loadEventFired":
            self._loaded.set()
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"uncaught: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = [a.get("value", a.get("description", "")) for a in params.get("args", [])]
            self.errors.append("console.error: " + " ".join(map(str, args)))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"log: {entry.get('text')} ({entry.get('url', '')})")
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])

    def set_viewport(self, width, height, mobile=False):
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )

    def goto(self, url, timeout=TIMEOUT):
        self._loaded.clear()
        self.send("Page.navigate", {"url": url})
        if not self._loaded.wait(timeout):
            raise ProtocolError(f"{url} did not finish loading within {timeout} s")

    def evaluate(self, expression, timeout=TIMEOUT):
        """The value of a JavaScript expression (JSON-able; a returned Promise is awaited)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise ProtocolError(f"JavaScript error: {text}")
        return result["result"].get("value")

    def press(self, key, code=None, key_code=None, shift=False):
        """Press and release one key (``"Tab"``, ``"ArrowRight"``, ...) as a user would."""
        codes = {"Tab": 9, "Enter": 13, "ArrowLeft": 37, "ArrowUp": 38, "ArrowRight": 39}
        codes["ArrowDown"] = 40
        params = {
            "key": key,
            "code": code or key,
            "windowsVirtualKeyCode": key_code or codes.get(key, 0),
            "modifiers": 8 if shift else 0,
        }
        self.send("Input.dispatchKeyEvent", {"type": "rawKeyDown", **params})
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", **params})

    def screenshot(self, path, full_page=True, selector=None):
        """A PNG of the page, of the whole document, or of the element ``selector`` names."""
        params = {"format": "png"}
        if selector:
            rect = self.evaluate(
                f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                ".getBoundingClientRect(); return {x: r.left + scrollX, y: r.top + scrollY, "
                "width: r.width, height: r.height}; })()"
            )
            params["captureBeyondViewport"] = True
            params["clip"] = dict(rect, scale=1)
        elif full_page:
            params["captureBeyondViewport"] = True
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": size["height"],
                "scale": 1,
            }
        data = self.send("Page.captureScreenshot", params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path
