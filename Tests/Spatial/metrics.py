#!/usr/bin/python3
"""Error of birefnetmatte's output against a scene.py ground truth; prints one JSON object.

  metrics.py SCENE_DIR FRAME_INDEX alpha OUTPUT.rgba
      output is straight RGBA from matte-mode=soft, background=none: its alpha channel is the
      matte. Prints mad (mean |alpha - truth| over the picture), grad (gradient error: mean squared
      difference of Gaussian-derivative gradients, sigma 1.4, in the band where either matte is
      not flat), stroke_mad (mean |alpha - truth| over the stroke band).
  metrics.py SCENE_DIR FRAME_INDEX composite OUTPUT.rgba R G B
      output is a composite over the solid colour (R,G,B); prints colour_error, the mean absolute
      RGB difference (0..255) from alpha*F + (1-alpha)*colour over the semi-transparent pixels.
  metrics.py SCENE_DIR FRAME_INDEX straight OUTPUT.rgba
      straight-alpha RGBA: prints colour_error, the mean absolute RGB difference from F over the
      semi-transparent pixels (what a player compositing this alpha would show there).
"""
import json
import os
import sys

import numpy as np


def gaussian_derivative_gradient(image, sigma=1.4):
    radius = int(np.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-x * x / (2 * sigma * sigma))
    g /= g.sum()
    dg = -x / (sigma * sigma) * g

    def along(a, kernel, axis):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        padded = np.pad(a, pad, mode="edge")
        out = np.zeros_like(a)
        for i, k in enumerate(kernel):
            sl = [slice(None), slice(None)]
            sl[axis] = slice(i, i + a.shape[axis])
            out += k * padded[tuple(sl)]
        return out

    gx = along(along(image, g, 0), dg, 1)
    gy = along(along(image, g, 1), dg, 0)
    return gx, gy


def main():
    scene_dir, index, kind, output = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    with open(os.path.join(scene_dir, "scene.json")) as f:
        scene = json.load(f)
    h, w = scene["height"], scene["width"]
    truth = np.fromfile(os.path.join(scene_dir, f"alpha{index}.f32"), dtype=np.float32).reshape(h, w).astype(np.float64)
    rgba = np.fromfile(output, dtype=np.uint8).reshape(h, w, 4).astype(np.float64)
    result = {}
    if kind == "alpha":
        alpha = rgba[..., 3] / 255.0
        result["mad"] = float(np.mean(np.abs(alpha - truth)))
        tx, ty = gaussian_derivative_gradient(truth)
        ax, ay = gaussian_derivative_gradient(alpha)
        edge = (truth > 0.0) & (truth < 1.0) | ((alpha > 0.004) & (alpha < 0.996))
        result["grad"] = float(np.mean(((ax - tx) ** 2 + (ay - ty) ** 2)[edge]))
        strokes = np.fromfile(os.path.join(scene_dir, f"strokes{index}.u8"), dtype=np.uint8).reshape(h, w) > 0
        result["stroke_mad"] = float(np.mean(np.abs(alpha - truth)[strokes]))
        result["stroke_pixels"] = int(strokes.sum())
    else:
        fg = np.fromfile(os.path.join(scene_dir, f"fg{index}.f32"), dtype=np.float32).reshape(h, w, 3) * 255.0
        if kind == "straight":
            expected = fg
        else:
            colour = np.array([float(v) for v in sys.argv[5:8]])
            expected = truth[..., None] * fg + (1 - truth[..., None]) * colour
        partial = (truth > 0.05) & (truth < 0.95)
        result["colour_error"] = float(np.mean(np.abs(rgba[..., :3] - expected)[partial]))
        result["partial_pixels"] = int(partial.sum())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
