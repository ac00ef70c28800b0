#!/usr/bin/python3
"""Writes the test photo: scikit-image's public-domain astronaut (skimage.data.astronaut(),
NASA photo of Eileen Collins), RGB uint8, 512×512, not committed but generated where it is needed.

    /usr/bin/python3 models/selfie/make_astronaut_input.py OUT.rgb   # raw RGB bytes, rows top to bottom
    /usr/bin/python3 models/selfie/make_astronaut_input.py OUT.png   # 8-bit RGB PNG

Debian: apt-get install python3-skimage (the photo ships in its data folder). The raw form is what the
Swift test uses (`filesrc ! rawvideoparse format=rgb width=512 height=512 framerate=1/1`): 786,432
bytes, no header. models/selfie/astronaut_reference_mask.png is MediaPipe's own mask of this photo.
"""
import sys


def astronaut():
    import numpy as np
    from skimage import data

    image = np.ascontiguousarray(data.astronaut())
    if image.shape != (512, 512, 3) or image.dtype != np.uint8:
        raise SystemExit(f"skimage.data.astronaut() gave {image.shape} {image.dtype}, expected (512, 512, 3) uint8")
    return image


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    path = sys.argv[1]
    image = astronaut()
    if path.lower().endswith(".png"):
        from skimage import io
        io.imsave(path, image, check_contrast=False)
    else:
        with open(path, "wb") as f:
            f.write(image.tobytes())


if __name__ == "__main__":
    main()
