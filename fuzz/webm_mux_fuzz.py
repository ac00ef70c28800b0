#!/usr/bin/python3
"""Structure-aware fuzzer for webmalphamux (issue 12): bytes -> a random WebM stream (a VP9 track
with or without alpha, maybe an Opus track, seekable or streamable output) and a random sequence of
frames (sizes, timestamps that jump, stall or go backwards, keyframe flags, missing durations),
pushed through the real element with appsrc; the file written must pass mkvinfo and ffprobe and
hold every frame that was pushed. libFuzzer cannot drive a GStreamer pipeline, so this is its own
small loop: the regression corpus first, then mutations of the seed corpus for the time given.

  webm_mux_fuzz.py SECONDS CORPUS_DIR [REGRESSION_DIR] [FINDINGS_DIR]

Needs GST_PLUGIN_PATH pointing at a folder holding only libgstbackdrop.so (fuzz/run.sh sets it).
Exit status 1 when an input failed; it is saved under FINDINGS_DIR.
"""
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstVideo  # noqa: E402

Gst.init(None)


class Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def byte(self) -> int:
        value = self.data[self.at] if self.at < len(self.data) else 0
        self.at += 1
        return value

    def word(self) -> int:
        return self.byte() | self.byte() << 8

    def left(self) -> bool:
        return self.at < len(self.data)


def program(data: bytes):
    """The stream an input describes: track set-up, then (track, pts_ns, duration_ns, key, size, alpha_size)."""
    r = Reader(data)
    flags = r.byte()
    setup = {
        "width": 1 + r.word() % 4096,
        "height": 1 + r.word() % 4096,
        "fps": 1 + r.byte() % 120,
        "alpha": bool(flags & 1),
        "audio": bool(flags & 2),
        "channels": 1 + (flags >> 2 & 1),
        "streamable": bool(flags & 8),
    }
    frames, clock = [], {"v": 0, "a": 0}
    while r.left() and len(frames) < 400:
        op = r.byte()
        track = "a" if setup["audio"] and op & 1 else "v"
        step = r.byte()
        if op & 2 and op & 4:
            clock[track] = max(0, clock[track] - step * 1_000_000)  # backwards
        elif op & 2:
            clock[track] += step * 1_000_000
        elif op & 4:
            clock[track] += step * 1_000_000_000 // 4  # a jump of up to a minute
        duration = None if op & 8 else (1 + r.byte()) * 1_000_000
        size = r.byte() * (1 + (op >> 6)) + (0 if op & 16 else 1)
        alpha_size = r.byte() % 64 if setup["alpha"] and track == "v" and not op & 32 else None
        key = track == "a" or not frames or bool(op & 32)
        frames.append((track, clock[track], duration, key, size, alpha_size))
    return setup, frames


def mux(setup, frames, path) -> str:
    """Runs the frames through webmalphamux into `path`; returns an error text or ''."""
    mux_props = "streamable=true" if setup["streamable"] else ""
    description = (
        f"appsrc name=v format=time caps=video/x-vp9,width={setup['width']},height={setup['height']},"
        f"framerate={setup['fps']}/1,codec-alpha={'true' if setup['alpha'] else 'false'} "
        f"! webmalphamux name=mux {mux_props} ! filesink location={path}"
    )
    if setup["audio"]:
        description += (
            f" appsrc name=a format=time caps=audio/x-opus,rate=48000,channels={setup['channels']},"
            "channel-mapping-family=0 ! mux.audio_%u"
        )
    pipeline = Gst.parse_launch(description)
    sources = {"v": pipeline.get_by_name("v"), "a": pipeline.get_by_name("a")}
    for source in sources.values():
        if source is not None:
            source.set_property("max-bytes", 0)
            source.set_property("block", False)
    pipeline.set_state(Gst.State.PLAYING)
    payload = bytes(range(256)) * 32

    def wrapped(size: int) -> Gst.Buffer:
        return Gst.Buffer.new_wrapped(payload[:size]) if size > 0 else Gst.Buffer.new()

    for track, pts, duration, key, size, alpha_size in frames:
        buffer = wrapped(size)
        buffer.pts = pts
        buffer.dts = Gst.CLOCK_TIME_NONE
        buffer.duration = duration if duration is not None else Gst.CLOCK_TIME_NONE
        if not key:
            buffer.set_flags(Gst.BufferFlags.DELTA_UNIT)
        if alpha_size is not None:
            GstVideo.buffer_add_video_codec_alpha_meta(buffer, wrapped(alpha_size))
        sources[track].emit("push-buffer", buffer)
    for source in sources.values():
        if source is not None:
            source.emit("end-of-stream")
    bus = pipeline.get_bus()
    message = bus.timed_pop_filtered(30 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if message is None:
        return "the pipeline did not finish in 30 s"
    if message.type == Gst.MessageType.ERROR:
        error, debug = message.parse_error()
        return f"ERROR from {message.src.get_name()}: {error.message} ({debug})"
    return ""


def check(data: bytes, work: str) -> str:
    setup, frames = program(data)
    path = os.path.join(work, "out.webm")
    if os.path.exists(path):
        os.remove(path)
    problem = mux(setup, frames, path)
    if problem:
        return problem
    info = subprocess.run(["mkvinfo", "-v", path], capture_output=True, text=True, errors="replace")
    if info.returncode != 0:
        return f"mkvinfo status {info.returncode}: {info.stdout[-600:]} {info.stderr[-300:]}"
    blocks = len(re.findall(r"\+ (Simple block|Block group)\b", info.stdout))
    if blocks != len(frames):
        return f"mkvinfo shows {blocks} blocks, {len(frames)} frames were pushed"
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", path],
        capture_output=True, text=True, errors="replace",
    )
    # Container complaints only: the payloads are not real VP9/Opus, so decoder messages are noise.
    container = [line for line in probe.stderr.splitlines() if not re.match(r"\[(vp9|libvpx|opus|libopus)", line)]
    if probe.returncode != 0 or container:
        return f"ffprobe status {probe.returncode}: {' | '.join(container)[:600]}"
    expected = ["vp9"] + (["opus"] if setup["audio"] else [])
    if sorted(probe.stdout.split()) != sorted(expected):
        return f"ffprobe streams {probe.stdout.split()}, expected {expected}"
    return ""


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data or b"\0")
    for _ in range(rng.randint(1, 8)):
        kind = rng.randrange(4)
        at = rng.randrange(len(out) + 1)
        if kind == 0 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif kind == 1:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif kind == 2 and len(out) > 1:
            del out[at:at + rng.randint(1, 8)]
        else:
            chunk = out[rng.randrange(len(out)):][:rng.randint(1, 32)] if out else b"\0"
            out[at:at] = chunk
    return bytes(out[:2048])


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60
    corpus = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "corpus", "webm_mux")
    regressions = sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.path.dirname(__file__), "regressions", "webm_mux")
    findings = sys.argv[4] if len(sys.argv) > 4 else "fuzz-findings/webm_mux"
    for tool in ("mkvinfo", "ffprobe"):
        if shutil.which(tool) is None:
            print(f"webm_mux_fuzz: {tool} is not installed", file=sys.stderr)
            return 69
    if Gst.ElementFactory.find("webmalphamux") is None:
        print("webm_mux_fuzz: no webmalphamux element (set GST_PLUGIN_PATH)", file=sys.stderr)
        return 69
    def files(folder):
        return sorted(os.path.join(folder, n) for n in os.listdir(folder) if not n.startswith(".")) if os.path.isdir(folder) else []
    seeds = [open(p, "rb").read() for p in files(corpus)]
    rng = random.Random(int(os.environ.get("FUZZ_SEED", time.time())))
    failures, runs = 0, 0
    with tempfile.TemporaryDirectory() as work:
        def run(data: bytes, name: str) -> None:
            nonlocal failures, runs
            runs += 1
            problem = check(data, work)
            if problem:
                failures += 1
                os.makedirs(findings, exist_ok=True)
                saved = os.path.join(findings, f"failure-{runs}")
                open(saved, "wb").write(data)
                print(f"FAILED {name}: {problem} (input saved as {saved})")
        for path in files(regressions) + files(corpus):
            run(open(path, "rb").read(), path)
        fixed = runs
        end = time.time() + seconds
        while time.time() < end:
            base = rng.choice(seeds) if seeds and rng.random() < 0.8 else bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
            run(mutate(base, rng), "mutation")
    print(f"webm_mux: {runs} executions ({fixed} corpus and regression inputs), {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
