#!/usr/bin/python3
"""Makes the README's before/after picture from a scene.py scene and birefnetmatte outputs.

  before_after.py SCENE_DIR BILINEAR.rgba GUIDED.rgba PLAIN_COMPOSITE.rgba ESTIMATED_COMPOSITE.rgba OUT.png

The first two are straight RGBA with a soft matte (edge-refine=none / guided), the last two
composites over a colour (foreground-estimate=false / true). A crop around the hair, enlarged 2x;
the composites show its central quarter enlarged 4x, where the old background's halo is visible.
"""
import json
import os
import sys

import numpy as np
from PIL import Image, ImageDraw


def main():
    scene_dir, bilinear, guided, plain, estimated, out = sys.argv[1:7]
    with open(os.path.join(scene_dir, "scene.json")) as f:
        scene = json.load(f)
    h, w = scene["height"], scene["width"]

    def load(path):
        return np.fromfile(path, dtype=np.uint8).reshape(h, w, 4)

    top, left, ch, cw = int(0.12 * h), int(0.5 * w - 0.07 * w), int(0.12 * h), int(0.1 * w)
    crop = lambda a: a[top:top + ch, left:left + cw]
    centre = lambda a: np.repeat(np.repeat(a[ch // 4:ch // 4 + ch // 2, cw // 4:cw // 4 + cw // 2], 2, 0), 2, 1)
    original = crop(load(os.path.join(scene_dir, "frame0.rgba")))[..., :3]
    panels = [("frame", original),
              ("matte: bilinear", np.repeat(crop(load(bilinear))[..., 3:4], 3, axis=2)),
              ("matte: guided", np.repeat(crop(load(guided))[..., 3:4], 3, axis=2)),
              ("composite: no estimate (4x)", centre(crop(load(plain))[..., :3])),
              ("composite: foreground-estimate (4x)", centre(crop(load(estimated))[..., :3]))]
    scale, label = 2, 18
    sheet = Image.new("RGB", (len(panels) * (cw * scale + 4), ch * scale + label), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (name, pixels) in enumerate(panels):
        x = i * (cw * scale + 4)
        sheet.paste(Image.fromarray(pixels).resize((cw * scale, ch * scale), Image.NEAREST), (x, label))
        draw.text((x + 4, 3), name, fill="black")
    sheet.save(out, optimize=True)


if __name__ == "__main__":
    main()
