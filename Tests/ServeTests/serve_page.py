#!/usr/bin/env python3
"""Drives the page of a running `backdrop serve` in headless Chromium as a person would, and prints
what it saw as JSON.

    serve_page.py [--browser chromium|firefox] --url URL --video FILE --downloads DIR [--screenshot PNG]
                  [--phone-screenshot PNG] [--timeout S]

It opens the page, picks the video in the file input, chooses a colour backdrop, clicks the
button, waits for the job to finish while recording the page's progress, reads back pixels of the
transparent preview through a canvas, clicks both download links and waits for the files, and
takes a screenshot of the finished page. Chromium is driven over its DevTools protocol on a pipe
(--remote-debugging-pipe: fd 3 in, fd 4 out, NUL-separated JSON); Firefox over WebDriver BiDi on a
loopback WebSocket (a small client below), so nothing beyond the standard library is needed.
Exit status 0 with JSON on stdout; 2 when the browser is not installed; 1 on failure.
"""
import argparse
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time


class Chromium:
    def __init__(self, profile, downloads):
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if not exe:
            raise FileNotFoundError("chromium")
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()

        def wire():
            # Copies first: a pipe end may already be fd 3 or 4, and dup2 onto itself would
            # keep its close-on-exec flag.
            read_end, write_end = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.log = open(os.path.join(profile, "..", "browser.log"), "w")
        self.process = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--remote-debugging-pipe", f"--user-data-dir={profile}",
             "--no-first-run", "--disable-gpu", "--mute-audio", "--autoplay-policy=no-user-gesture-required",
             "--hide-scrollbars", "about:blank"],
            stdout=self.log, stderr=self.log, close_fds=False, preexec_fn=wire, start_new_session=True)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.buffer = b""
        self.next_id = 0
        self.events = []
        self.downloads = downloads

    def open_page(self):
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = ChromiumPage(self, session)
        page.send("Page.enable")
        page.send("Runtime.enable")
        self.send("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": self.downloads, "eventsEnabled": True})
        return page

    def close(self):
        # End the browser we started: its process group (a session leader, see Popen above).
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(5)
                break
            except subprocess.TimeoutExpired:
                continue
        for fd in (self.to_browser, self.from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()

    def _read_message(self):
        while b"\0" not in self.buffer:
            chunk = os.read(self.from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("the browser closed its pipe")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method, params=None, session=None):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)


class ChromiumPage:
    def __init__(self, browser, session):
        self.browser, self.session = browser, session

    def send(self, method, params=None):
        return self.browser.send(method, params, self.session)

    def eval(self, expression, await_promise=False):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": await_promise})
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def viewport(self, width, height, mobile=False):
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    def navigate(self, url):
        self.send("Page.navigate", {"url": url})

    def set_file(self, selector, path):
        """As the file chooser would."""
        root = self.send("DOM.getDocument")["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        self.send("DOM.setFileInputFiles", {"nodeId": node, "files": [path]})

    def screenshot(self, path):
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        with open(path, "wb") as out:
            out.write(base64.b64decode(shot["data"]))

    def wait(self, expression, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.1)
        raise RuntimeError(f"timed out waiting for {what}")

    def click(self, selector):
        """A real mouse click in the middle of an element, as a person makes it."""
        box = center(self, selector)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1})


def center(page, selector):
    return page.eval(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
        e.scrollIntoView({{block: "center"}}); const r = e.getBoundingClientRect();
        return [Math.round(r.x + r.width / 2), Math.round(r.y + r.height / 2)]; }})()""")


class WebSocket:
    """A minimal RFC 6455 client: text frames, masked sends, fragmented receives."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /session HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("WebSocket handshake: connection closed")
            response += chunk
        head, self.rest = response.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(f"WebSocket handshake refused: {head[:200]!r}")

    def send(self, text):
        payload = text.encode()
        n = len(payload)
        header = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                  bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                                  bytes([0x80 | 127]) + struct.pack(">Q", n))
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _read(self, n):
        while len(self.rest) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise RuntimeError("the browser closed its WebSocket")
            self.rest += chunk
        data, self.rest = self.rest[:n], self.rest[n:]
        return data

    def receive(self):
        message = b""
        while True:
            first, second = self._read(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            if first & 0x0F == 0x8:
                raise RuntimeError("the browser closed its WebSocket")
            if first & 0x0F == 0x9:  # ping
                continue
            message += payload
            if first & 0x80:
                return json.loads(message)


class Firefox:
    def __init__(self, profile, downloads):
        exe = shutil.which("firefox-esr") or shutil.which("firefox")
        if not exe:
            raise FileNotFoundError("firefox")
        with open(os.path.join(profile, "user.js"), "w") as prefs:
            for key, value in [("media.autoplay.default", 0), ("browser.shell.checkDefaultBrowser", False),
                               ("datareporting.policy.dataSubmissionEnabled", False),
                               ("browser.download.folderList", 2), ("browser.download.dir", downloads),
                               ("browser.download.useDownloadDir", True),
                               ("browser.download.always_ask_before_handling_new_types", False),
                               ("browser.helperApps.neverAsk.saveToDisk", "video/webm,video/mp4"),
                               ("browser.download.alwaysOpenPanel", False)]:
                prefs.write(f"user_pref({json.dumps(key)}, {json.dumps(value)});\n")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.log = open(os.path.join(profile, "..", "browser.log"), "w")
        self.process = subprocess.Popen(
            [exe, "--headless", "--no-remote", "--profile", profile, f"--remote-debugging-port={port}", "about:blank"],
            stdout=self.log, stderr=self.log, start_new_session=True)
        deadline = time.time() + 60
        while True:
            try:
                self.ws = WebSocket(port)
                break
            except (OSError, RuntimeError):
                if time.time() > deadline:
                    raise RuntimeError("Firefox did not open its WebDriver BiDi port")
                time.sleep(0.3)
        self.next_id = 0
        self.send("session.new", {"capabilities": {}})

    def send(self, method, params=None):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params or {}}))
        while True:
            reply = self.ws.receive()
            if reply.get("id") == self.next_id:
                if reply.get("type") == "error":
                    raise RuntimeError(f"{method}: {reply.get('error')}: {reply.get('message')}")
                return reply.get("result", {})

    def open_page(self):
        context = self.send("browsingContext.getTree")["contexts"][0]["context"]
        return FirefoxPage(self, context)

    def close(self):
        try:
            self.ws.sock.close()
        except (AttributeError, OSError):
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(5)
                break
            except subprocess.TimeoutExpired:
                continue
        self.log.close()


class FirefoxPage:
    def __init__(self, browser, context):
        self.browser, self.context = browser, context

    def send(self, method, params):
        return self.browser.send(method, dict(params, context=self.context))

    def _evaluate(self, expression, await_promise=False, ownership="none"):
        result = self.browser.send("script.evaluate", {"expression": expression, "target": {"context": self.context},
                                                       "awaitPromise": await_promise, "resultOwnership": ownership})
        if result.get("type") == "exception":
            raise RuntimeError(f"page script failed: {result.get('exceptionDetails', {}).get('text')}")
        return result["result"]

    def eval(self, expression, await_promise=False):
        # Values come back as JSON text: BiDi's own serialisation of objects is not plain JSON.
        if await_promise:
            wrapped = f"(async () => JSON.stringify(await ({expression})))()"
        else:
            wrapped = f"JSON.stringify({expression})"
        value = self._evaluate(wrapped, await_promise).get("value")
        return None if value is None else json.loads(value)

    def wait(self, expression, timeout, what):
        return ChromiumPage.wait(self, expression, timeout, what)

    def viewport(self, width, height, mobile=False):
        self.send("browsingContext.setViewport", {"viewport": {"width": width, "height": height}})

    def navigate(self, url):
        self.send("browsingContext.navigate", {"url": url, "wait": "complete"})

    def set_file(self, selector, path):
        node = self._evaluate(f"document.querySelector({json.dumps(selector)})", ownership="root")
        self.send("input.setFiles", {"element": {"sharedId": node["sharedId"]}, "files": [path]})

    def click(self, selector):
        x, y = center(self, selector)
        self.send("input.performActions", {"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
                                                        "actions": [{"type": "pointerMove", "x": x, "y": y},
                                                                    {"type": "pointerDown", "button": 0},
                                                                    {"type": "pointerUp", "button": 0}]}]})

    def screenshot(self, path):
        shot = self.send("browsingContext.captureScreenshot", {"origin": "document"})
        with open(path, "wb") as out:
            out.write(base64.b64decode(shot["data"]))


READBACK = """
(async () => {
  const video = document.getElementById("preview-alpha");
  if (video.readyState < 2) await new Promise((ok) => video.addEventListener("loadeddata", ok, { once: true }));
  video.pause();
  await new Promise((ok) => { video.addEventListener("seeked", ok, { once: true }); video.currentTime = 0.5; });
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  const context = canvas.getContext("2d");
  context.drawImage(video, 0, 0);
  const at = (x, y) => Array.from(context.getImageData(x, y, 1, 1).data);
  const stage = getComputedStyle(video.parentElement);
  return { width: video.videoWidth, height: video.videoHeight, subject: at(10, 30), background: at(150, 30),
           checker: stage.backgroundImage.includes("gradient"),
           backdrop: getComputedStyle(document.getElementById("backdrop-stage")).backgroundColor };
})()
"""


def wait_for_downloads(folder, count, timeout):
    """The names of `count` finished downloads in `folder`, sorted, or whatever is there at the timeout.

    A download is finished when the browser has no partial file left (Chromium's .crdownload,
    Firefox's .part: Firefox also makes an empty placeholder under the final name at the start) and
    every file's size has stayed the same, above zero, over two looks half a second apart."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        names = sorted(os.listdir(folder))
        sizes = {n: os.path.getsize(os.path.join(folder, n)) for n in names}
        settled = (len(names) == count and not any(n.endswith((".crdownload", ".part")) for n in names)
                   and all(sizes.values()))
        if settled and sizes == last:
            return names
        last = sizes if settled else None
        time.sleep(0.5)
    return sorted(os.listdir(folder))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--browser", choices=["chromium", "firefox"], default="chromium")
    parser.add_argument("--url", required=True)
    parser.add_argument("--video", required=True)
    parser.add_argument("--downloads", required=True)
    parser.add_argument("--screenshot")
    parser.add_argument("--phone-screenshot", help="the same page at a phone's width (390 px)")
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="serve-page-")
    profile = os.path.join(work, "profile")
    os.makedirs(profile)
    try:
        browser = (Chromium if args.browser == "chromium" else Firefox)(profile, os.path.abspath(args.downloads))
    except FileNotFoundError:
        print(f"{args.browser} is not installed", file=sys.stderr)
        return 2
    report = {"browser": args.browser}
    try:
        page = browser.open_page()
        page.viewport(1100, 1000)
        page.navigate(args.url)
        page.wait("document.readyState === 'complete' && document.getElementById('model').options.length > 0", 30, "the page")

        # Pick the file as the file chooser would, choose a colour backdrop, click the button.
        page.set_file("#file", os.path.abspath(args.video))
        page.wait("!document.getElementById('start').disabled", 10, "the start button")
        page.eval("""(() => { const s = document.getElementById('background'); s.value = 'color';
            s.dispatchEvent(new Event('change')); const c = document.getElementById('color'); c.value = '#3366cc';
            c.dispatchEvent(new Event('input')); c.dispatchEvent(new Event('change')); })()""")
        report["models"] = page.eval("Array.from(document.getElementById('model').options).map(o => o.value)")
        page.eval("document.getElementById('model').value = 'lumakey'")
        page.click("#start")
        started = time.time()
        page.wait("!document.getElementById('results').hidden || !document.getElementById('error').hidden "
                  "|| /failed|cancelled|interrupted/.test(document.getElementById('state').textContent)",
                  args.timeout, "the job to finish")
        report["seconds"] = round(time.time() - started, 2)
        report["progress"] = page.eval("window.backdropProgress")
        report["state"] = page.eval("document.getElementById('state').textContent")
        report["percent_text"] = page.eval("document.getElementById('percent').textContent")
        report["error"] = page.eval("document.getElementById('error').textContent")
        report["readback"] = page.eval(READBACK, await_promise=True)
        page.wait("document.querySelector('#jobs tbody tr') && "
                  "document.querySelector('#jobs tbody tr td:nth-child(2)').textContent === 'done'", 10, "the job list")
        report["job_row"] = page.eval("Array.from(document.querySelectorAll('#jobs tbody tr td')).slice(0, 4).map(c => c.textContent)")
        for link in ("#download-webm", "#download-mp4"):
            page.click(link)
        report["downloads"] = wait_for_downloads(args.downloads, 2, 60)
        if args.screenshot:
            page.eval("(window.scrollTo(0, 0), document.getElementById('preview-alpha').currentTime = 0.5)")
            time.sleep(0.5)
            page.screenshot(args.screenshot)
        if args.phone_screenshot:
            page.viewport(390, 844, mobile=True)
            time.sleep(0.5)
            report["phone_overflow"] = page.eval("document.documentElement.scrollWidth > window.innerWidth")
            page.screenshot(args.phone_screenshot)
    except Exception as error:  # the report says what went wrong; the browser log helps
        report["failure"] = str(error)
        tail = open(os.path.join(work, "browser.log"), errors="replace").read()[-2000:]
        report["browser_log"] = tail
        print(json.dumps(report))
        return 1
    finally:
        browser.close()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
