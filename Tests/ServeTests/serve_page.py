#!/usr/bin/env python3
"""Drives the page of a running `backdrop serve` in headless Chromium as a person would, and prints
what it saw as JSON.

    serve_page.py --url URL --video FILE --downloads DIR [--screenshot PNG] [--timeout S]

It opens the page, picks the video in the file input, chooses a colour backdrop, clicks the
button, waits for the job to finish while recording the page's progress, reads back pixels of the
transparent preview through a canvas, clicks both download links and waits for the files, and
takes a screenshot of the finished page. Chromium is driven over its DevTools protocol on a pipe
(--remote-debugging-pipe: fd 3 in, fd 4 out, NUL-separated JSON), so nothing beyond the standard
library is needed. Exit status 0 with JSON on stdout; 2 when Chromium is not installed; 1 on failure.
"""
import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self, profile):
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


class Page:
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
        box = self.eval(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            e.scrollIntoView({{block: "center"}}); const r = e.getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1})


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


def main():
    parser = argparse.ArgumentParser()
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
        browser = Browser(profile)
    except FileNotFoundError:
        print("chromium is not installed", file=sys.stderr)
        return 2
    report = {}
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(browser, session)
        page.send("Page.enable")
        page.send("Runtime.enable")
        page.send("Emulation.setDeviceMetricsOverride", {"width": 1100, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
        browser.send("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": os.path.abspath(args.downloads),
                                                     "eventsEnabled": True})
        page.send("Page.navigate", {"url": args.url})
        page.wait("document.readyState === 'complete' && document.getElementById('model').options.length > 0", 30, "the page")

        # Pick the file as the file chooser would, choose a colour backdrop, click the button.
        root = page.send("DOM.getDocument")["root"]["nodeId"]
        node = page.send("DOM.querySelector", {"nodeId": root, "selector": "#file"})["nodeId"]
        page.send("DOM.setFileInputFiles", {"nodeId": node, "files": [os.path.abspath(args.video)]})
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
        deadline = time.time() + 30
        while time.time() < deadline:
            names = [n for n in os.listdir(args.downloads) if not n.endswith(".crdownload")]
            if len(names) >= 2:
                break
            time.sleep(0.2)
        report["downloads"] = sorted(os.listdir(args.downloads))
        if args.screenshot:
            page.eval("window.scrollTo(0, 0); document.getElementById('preview-alpha').currentTime = 0.5")
            time.sleep(0.5)
            shot = page.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
            with open(args.screenshot, "wb") as out:
                out.write(base64.b64decode(shot["data"]))
        if args.phone_screenshot:
            page.send("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
            time.sleep(0.5)
            report["phone_overflow"] = page.eval("document.documentElement.scrollWidth > window.innerWidth")
            shot = page.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
            with open(args.phone_screenshot, "wb") as out:
                out.write(base64.b64decode(shot["data"]))
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
