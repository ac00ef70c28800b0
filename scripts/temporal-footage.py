#!/usr/bin/python3
"""Temporal stability of birefnetmatte on real footage (issue 9).

Runs the first frames of a fixed-camera clip (default: vtest.avi from Debian's opencv-doc,
pedestrians filmed from a fixed camera) through birefnetmatte with the binary matte, once per frame
(temporal-smooth=0) and once stabilised (the default), and prints:
  - flips: the share of static subject pixels whose binary matte changes between consecutive
    frames (static: the picture changed by less than 3 grey levels over a 9x9 neighbourhood;
    subject: foreground in either frame of the per-frame run, the same pixels for both runs);
  - flicker: mean |a_t - a_(t-1)| over all static pixels.
With --sheet it writes a contact sheet (original, per-frame matte, stabilised matte, composite).

Needs ffmpeg, gst-launch-1.0 with the built plugin, python3-numpy and python3-pil.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image


def run_matte(plugin_dir, raw, width, height, model, size, extra):
    out = raw + ".matte"
    pipeline = [
        "gst-launch-1.0", "-q", "filesrc", f"location={raw}", f"blocksize={width * height * 3}", "!",
        "rawvideoparse", "format=rgb", f"width={width}", f"height={height}", "framerate=10/1", "!",
        "birefnetmatte", f"model-file={model}", "device=cpu", f"inference-width={size}",
        f"inference-height={size}", "matte-mode=binary", *extra, "!",
        "video/x-raw,format=GRAY8", "!", "filesink", f"location={out}"]
    env = dict(os.environ, GST_PLUGIN_PATH=plugin_dir)
    subprocess.run(pipeline, check=True, env=env)
    data = np.fromfile(out, np.uint8)
    stride = (width + 3) & ~3
    return data.reshape(-1, height, stride)[:, :, :width]


def static_mask(frames):
    """Pixels whose grey value moved by less than 3 levels anywhere in their 9x9 neighbourhood."""
    grey = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    change = np.abs(np.diff(grey, axis=0))
    # max over a 9x9 window, separably
    for axis in (1, 2):
        shifted = [np.roll(change, k, axis=axis) for k in range(-4, 5)]
        change = np.max(shifted, axis=0)
    return change < 3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default="/usr/share/doc/opencv-doc/examples/data/vtest.avi")
    parser.add_argument("--model", required=True)
    parser.add_argument("--plugin-dir", required=True, help="a folder holding only libgstbackdrop.so")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", type=int, default=256, help="inference size (selfie: 256)")
    parser.add_argument("--smooth", default=None, help="temporal-smooth for the stabilised run (default: the element's)")
    parser.add_argument("--sheet", help="write the contact sheet PNG here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        raw = os.path.join(folder, "frames.rgb")
        subprocess.run(["ffmpeg", "-v", "error", "-i", args.video, "-frames:v", str(args.frames), "-f", "rawvideo",
                        "-pix_fmt", "rgb24", raw], check=True)
        probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                                "stream=width,height", "-of", "csv=p=0", args.video], check=True, capture_output=True, text=True)
        width, height = map(int, probe.stdout.strip().split(","))
        frames = np.fromfile(raw, np.uint8).reshape(-1, height, width, 3)
        per_frame = run_matte(args.plugin_dir, raw, width, height, args.model, args.size, ["temporal-smooth=0"])
        stabilised = run_matte(args.plugin_dir, raw, width, height, args.model, args.size,
                               [f"temporal-smooth={args.smooth}"] if args.smooth else [])

    still = static_mask(frames)
    subject = (per_frame[1:] > 127) | (per_frame[:-1] > 127)
    results = {}
    for name, mattes in (("per-frame", per_frame), ("stabilised", stabilised)):
        flips = (mattes[1:] > 127) != (mattes[:-1] > 127)
        delta = np.abs(np.diff(mattes.astype(np.float32), axis=0)) / 255
        results[name] = (flips[still & subject].mean(), delta[still].mean())
        print(f"{name:10s}: static subject pixels flipping {100 * results[name][0]:.1f} %, "
              f"static flicker {results[name][1]:.5f} (frames {len(mattes)}, static subject pixels {int((still & subject).sum())})")
    drop = 1 - results["stabilised"][1] / max(results["per-frame"][1], 1e-12)
    print(f"static flicker drop: {100 * drop:.1f} %")

    if args.sheet:
        tile_w, tile_h = 256, 192
        rows = []
        for t in np.linspace(args.frames // 4, args.frames - 1, 3).astype(int):
            original = frames[t]
            alpha = stabilised[t].astype(np.float32)[..., None] / 255
            green = np.array([0, 177, 64], np.float32)
            composite = (alpha * original + (1 - alpha) * green).astype(np.uint8)
            tiles = [original, np.repeat(per_frame[t][..., None], 3, 2), np.repeat(stabilised[t][..., None], 3, 2), composite]
            rows.append(np.concatenate([np.asarray(Image.fromarray(x).resize((tile_w, tile_h), Image.BILINEAR)) for x in tiles], 1))
        # a 256-colour palette keeps the picture small enough to commit (mattes are two colours)
        Image.fromarray(np.concatenate(rows, 0)).quantize(colors=256).save(args.sheet, optimize=True)
        print(f"contact sheet: {args.sheet} (original | per-frame matte | stabilised matte | composite)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
