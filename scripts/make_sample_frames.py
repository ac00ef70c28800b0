#!/usr/bin/python3
"""Writes raw RGB frames of a slow pan and zoom over the public-domain astronaut photo
(scikit-image's skimage.data.astronaut()) to stdout, for the demo clip.

    /usr/bin/python3 scripts/make_sample_frames.py WIDTH HEIGHT FRAMES | gst-launch-1.0 fdsrc ! rawvideoparse ...
"""
import sys

import numpy as np
from skimage import data
from skimage.transform import resize


def main():
    width, height, frames = (int(v) for v in sys.argv[1:4])
    photo = data.astronaut().astype(np.float32) / 255.0  # 512×512 RGB
    out = sys.stdout.buffer
    for n in range(frames):
        t = n / max(frames - 1, 1)
        # The crop shrinks from 100 % to 70 % of the photo's height while sliding left to right.
        crop_h = int(512 * (1.0 - 0.3 * t))
        crop_w = min(512, int(crop_h * width / height))
        x0 = int((512 - crop_w) * t)
        y0 = int((512 - crop_h) * 0.2 * t)
        crop = photo[y0:y0 + crop_h, x0:x0 + crop_w]
        frame = resize(crop, (height, width), order=1, anti_aliasing=True)
        out.write((np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8).tobytes())


if __name__ == "__main__":
    main()
