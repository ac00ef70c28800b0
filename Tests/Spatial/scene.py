#!/usr/bin/python3
"""Seeded synthetic stills with exact ground truth for the spatial refinement tests (issue 9).

A soft-edged subject (head and shoulders made of discs, an edge ramp a few pixels wide) with thin
hair-like strokes, over a textured, coloured background. The foreground colour F, background B
and alpha are known exactly; the picture is I = alpha*F + (1-alpha)*B, rounded to 8 bits.

Writes into OUT_DIR, for each frame k (0..frames-1; frame k shifts the subject by 3k pixels):
  frame{k}.rgba      the picture, packed RGBA uint8 (alpha 255), width*height*4 bytes
  alpha{k}.f32       ground-truth alpha, float32 in 0..1
  fg{k}.f32          ground-truth foreground colour, float32 RGB in 0..1
  strokes{k}.u8      1 where a pixel lies within 2 px of a stroke (and outside the body)
and frames.rgba (every frame, one after the other) and scene.json with the sizes.

Usage: scene.py OUT_DIR --width W --height H [--stroke-width PX] [--seed N] [--frames N]
"""
import argparse
import json
import os

import numpy as np


def smooth_noise(rng, height, width, cells):
    """Values in 0..1 varying over about `cells` cells across the picture (bilinear lattice)."""
    grid = rng.random((cells + 2, cells + 2)).astype(np.float32)
    ys = np.linspace(0, cells, height, dtype=np.float32)
    xs = np.linspace(0, cells, width, dtype=np.float32)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def background(rng, height, width):
    """Dark, coloured and textured: luma stays between about 0.06 and 0.2."""
    n1, n2, n3 = (smooth_noise(rng, height, width, 6) for _ in range(3))
    fine = smooth_noise(rng, height, width, max(8, width // 24)) - 0.5
    rgb = np.stack([0.04 + 0.22 * n1 + 0.06 * fine, 0.05 + 0.12 * n2 + 0.06 * fine, 0.08 + 0.30 * n3 + 0.06 * fine], -1)
    return np.clip(rgb, 0, 1).astype(np.float32)


def foreground(rng, height, width):
    """Bright and warm with a gentle shading (luma about 0.8)."""
    n = smooth_noise(rng, height, width, 3)
    return np.stack([np.full_like(n, 0.95), 0.84 - 0.06 * n, 0.66 + 0.08 * n], -1).astype(np.float32)


def disc_alpha(yy, xx, cy, cx, radius, edge):
    """Coverage of a disc with a linear edge ramp `edge` pixels wide."""
    distance = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) - radius
    return np.clip(0.5 - distance / edge, 0, 1)


def stroke_alpha(alpha, band, rng, cy, cx, radius, count, stroke_width, height, width):
    """Hair: slightly curved strokes leaving the head outwards, antialiased by distance."""
    for _ in range(count):
        angle = rng.uniform(-np.pi * 0.95, -np.pi * 0.05)  # upper half of the head
        length = radius * rng.uniform(0.35, 0.8)
        bend = rng.uniform(-0.35, 0.35)
        points = []
        for t in np.linspace(0, 1, 9):
            a = angle + bend * t
            r = radius * 0.9 + length * t
            points.append((cy + r * np.sin(a), cx + r * np.cos(a)))
        for (y0, x0), (y1, x1) in zip(points[:-1], points[1:]):
            top, bottom = int(max(0, min(y0, y1) - 4)), int(min(height, max(y0, y1) + 5))
            left, right = int(max(0, min(x0, x1) - 4)), int(min(width, max(x0, x1) + 5))
            if top >= bottom or left >= right:
                continue
            yy, xx = np.mgrid[top:bottom, left:right].astype(np.float32)
            dy, dx = y1 - y0, x1 - x0
            t = np.clip(((yy - y0) * dy + (xx - x0) * dx) / max(dy * dy + dx * dx, 1e-6), 0, 1)
            distance = np.sqrt((yy - (y0 + t * dy)) ** 2 + (xx - (x0 + t * dx)) ** 2)
            coverage = np.clip(stroke_width / 2 + 0.5 - distance, 0, 1)
            region = alpha[top:bottom, left:right]
            np.maximum(region, coverage, out=region)
            near = band[top:bottom, left:right]
            near |= distance <= 2.0


def make(out_dir, width, height, stroke_width, seed, frames):
    os.makedirs(out_dir, exist_ok=True)
    scale = height / 1080.0
    edge = 3.0 * scale
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    everything = open(os.path.join(out_dir, "frames.rgba"), "wb")
    for k in range(frames):
        rng = np.random.default_rng(seed)  # same scene every frame, only the subject moves
        bg = background(rng, height, width)
        fg = foreground(rng, height, width)
        shift = 3.0 * k * scale
        head_y, head_x, head_r = 0.40 * height, 0.50 * width + shift, 0.17 * height
        body = np.maximum(disc_alpha(yy, xx, head_y, head_x, head_r, edge),
                          disc_alpha(yy, xx, 1.25 * height, 0.5 * width + shift, 0.62 * height, edge))
        alpha = body.copy()
        band = np.zeros((height, width), dtype=bool)
        stroke_alpha(alpha, band, rng, head_y, head_x, head_r, 70, stroke_width, height, width)
        band &= body < 0.5
        picture = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
        rgba = np.empty((height, width, 4), dtype=np.uint8)
        rgba[..., :3] = np.clip(np.rint(picture * 255), 0, 255).astype(np.uint8)
        rgba[..., 3] = 255
        rgba.tofile(os.path.join(out_dir, f"frame{k}.rgba"))
        everything.write(rgba.tobytes())
        alpha.astype(np.float32).tofile(os.path.join(out_dir, f"alpha{k}.f32"))
        fg.astype(np.float32).tofile(os.path.join(out_dir, f"fg{k}.f32"))
        band.astype(np.uint8).tofile(os.path.join(out_dir, f"strokes{k}.u8"))
    everything.close()
    with open(os.path.join(out_dir, "scene.json"), "w") as f:
        json.dump({"width": width, "height": height, "frames": frames, "stroke_width": stroke_width, "seed": seed}, f)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--height", type=int, required=True)
    parser.add_argument("--stroke-width", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--frames", type=int, default=1)
    args = parser.parse_args()
    make(args.out_dir, args.width, args.height, args.stroke_width, args.seed, args.frames)


if __name__ == "__main__":
    main()
