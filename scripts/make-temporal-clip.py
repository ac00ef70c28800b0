#!/usr/bin/python3
"""Seeded synthetic clip with exact ground-truth alpha, for the temporal-stability tests (issue 9).

A bright, softly textured subject (an ellipse with a soft edge and thin hair-like strokes) over a
dark textured background, so that the designed luma-key model (models/designed/lumakey.pt) keys
it from the picture and, like a real model, wavers at the boundary under noise. Every frame gets
sensor noise, a gain jitter and a JPEG round trip.

Variants: static, move2 / move6 (the subject moves right by 2 or 6 px a frame over a fixed
background), cut (a moving subject, then a different scene from the middle frame on).

Writes into --out: frames.rgb (packed RGB, frame after frame), alpha.gray (ground truth, 8 bit,
frame after frame) and clip.json (width, height, frames, variant, cut frame or -1).
Needs python3-numpy and python3-pil (Debian).
"""
import argparse
import io
import json
import os

import numpy as np
from PIL import Image


def texture(rng, height, width, low, high, scale):
    """Smooth random texture in [low, high]: a few sinusoids plus blurred noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    field = np.zeros((height, width))
    for _ in range(5):
        fx, fy = rng.uniform(-1, 1, 2) * (2 * np.pi / scale)
        field += np.sin(fx * x + fy * y + rng.uniform(0, 2 * np.pi))
    noise = rng.standard_normal((height // 4 + 2, width // 4 + 2))
    noise = np.kron(noise, np.ones((4, 4)))[:height, :width]
    for _ in range(2):  # box blur to soften the block noise
        noise = (noise + np.roll(noise, 1, 0) + np.roll(noise, -1, 0) + np.roll(noise, 1, 1) + np.roll(noise, -1, 1)) / 5
    field = field / 5 + 0.6 * noise
    field = (field - field.min()) / (field.max() - field.min())
    return low + (high - low) * field


def segment_distance(px, py, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
    return np.hypot(px - (ax + t * dx), py - (ay + t * dy))


def subject_alpha(height, width, cx, cy, rx, ry, strokes):
    """Ellipse with a 3-px soft edge, plus strokes (polylines relative to the centre) ~1 px wide."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    radial = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
    distance = (radial - 1.0) * min(rx, ry)  # approximately signed pixels outside the edge
    alpha = np.clip(0.5 - distance / 3.0, 0, 1)
    for points, width_px, strength in strokes:
        for (ax, ay), (bx, by) in zip(points[:-1], points[1:]):
            d = segment_distance(x, y, ax + cx, ay + cy, bx + cx, by + cy)
            alpha = np.maximum(alpha, strength * np.clip(width_px / 2 + 0.5 - d, 0, 1))
    return alpha


def make_strokes(rng, rx, ry, count):
    strokes = []
    for _ in range(count):
        angle = rng.uniform(-2.4, -0.7)  # upwards, over the top of the head
        start = np.array([np.cos(angle) * rx * 0.9, np.sin(angle) * ry * 0.9])
        direction = np.array([np.cos(angle), np.sin(angle)])
        points = [start]
        for _ in range(6):
            direction = direction + rng.normal(0, 0.25, 2)
            direction /= np.linalg.norm(direction)
            points.append(points[-1] + direction * rng.uniform(4, 7))
        strokes.append((points, rng.uniform(0.8, 1.6), rng.uniform(0.7, 1.0)))
    return strokes


class Scene:
    def __init__(self, rng, height, width, background_range, tint, subject_tint, rx, ry, cx, cy):
        self.background = texture(rng, height, width, *background_range, scale=37)[..., None] * tint
        # the subject's own texture, wider than the frame so it can slide with the subject
        self.foreground = texture(rng, height, width * 2, 0.72, 0.92, scale=23)[..., None] * subject_tint
        self.rx, self.ry, self.cx, self.cy = rx, ry, cx, cy
        self.strokes = make_strokes(rng, rx, ry, 14)

    def render(self, shift):
        height, width = self.background.shape[:2]
        alpha = subject_alpha(height, width, self.cx + shift, self.cy, self.rx, self.ry, self.strokes)
        offset = int(round(width // 2 - shift))  # whole-pixel slide of the subject's texture
        foreground = self.foreground[:, offset:offset + width]
        return alpha[..., None] * foreground + (1 - alpha[..., None]) * self.background, alpha


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--variant", choices=["static", "move2", "move6", "cut"], default="static")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--noise", type=float, default=0.03, help="sensor noise sigma (0..1 scale)")
    parser.add_argument("--gain-jitter", type=float, default=0.02)
    parser.add_argument("--jpeg-quality", type=int, default=85)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    h, w = args.height, args.width
    rx, ry = w * 0.14, h * 0.27
    first = Scene(rng, h, w, (0.06, 0.34), np.array([0.9, 1.0, 1.15]), np.array([1.0, 0.97, 0.9]),
                  rx, ry, w * 0.3, h * 0.6)
    second = Scene(rng, h, w, (0.22, 0.42), np.array([1.15, 1.0, 0.75]), np.array([0.95, 1.0, 1.05]),
                   rx * 0.8, ry * 0.9, w * 0.62, h * 0.55)
    speed = {"static": 0, "move2": 2, "move6": 6, "cut": 2}[args.variant]
    cut = args.frames // 2 if args.variant == "cut" else -1

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "frames.rgb"), "wb") as frames, open(os.path.join(args.out, "alpha.gray"), "wb") as alphas:
        for t in range(args.frames):
            scene, start = (second, cut) if 0 <= cut <= t else (first, 0)
            picture, alpha = scene.render(speed * (t - start))
            picture = picture * (1 + rng.normal(0, args.gain_jitter))
            picture = picture + rng.normal(0, args.noise, picture.shape)
            rgb = np.clip(np.round(picture * 255), 0, 255).astype(np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(rgb).save(buffer, format="JPEG", quality=args.jpeg_quality)
            rgb = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
            frames.write(rgb.tobytes())
            alphas.write(np.round(alpha * 255).astype(np.uint8).tobytes())
    with open(os.path.join(args.out, "clip.json"), "w") as meta:
        json.dump({"width": w, "height": h, "frames": args.frames, "variant": args.variant, "cut": cut,
                   "speed": speed}, meta)


if __name__ == "__main__":
    main()
