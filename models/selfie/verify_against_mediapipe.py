#!/usr/bin/python3
"""Compares the converted selfie.pt with MediaPipe's original (TFLite with its custom op) on the
astronaut photo. Not run in CI: it needs mediapipe 0.10.14, which installs under Python 3.11 with
its dependencies (opencv, protobuf, …); keep it in a virtualenv apart from Debian's torch:

    python3 -m venv /tmp/mpvenv && /tmp/mpvenv/bin/pip install mediapipe==0.10.14 'numpy<2' scikit-image
    /usr/bin/python3 models/selfie/verify_against_mediapipe.py --venv-python /tmp/mpvenv/bin/python \
        [--model models/selfie/selfie.pt] [--write-reference models/selfie/astronaut_reference_mask.png]

The two interpreters never share a process: this script (Debian's Python, torch) runs itself under
the virtualenv's Python with --mediapipe-side, which writes the inputs and MediaPipe's masks as
.npy files into a temporary folder; then it runs the TorchScript model on the same inputs.

Cases: the photo at 512×512, at 256×256 (the network's own size: no resampling on either side,
2×2 box-downscaled beforehand) and two other sizes (a non-square crop and an upscale). For each it
reports, with probabilities p = sigmoid(logits):
  * model:   the .pt on the image at its own size (its built-in MediaPipe-style resampling);
  * element: what birefnetmatte does with inference-width/height 256: antialiased bilinear
             downscale to 256², the model, probabilities resized back bilinearly (half-pixel);
the mask IoU at threshold 0.5 and the max abs difference of the probabilities against MediaPipe.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


def cases(astronaut):
    """Name → uint8 RGB image. Deterministic, from the 512×512 astronaut only."""
    small = astronaut.reshape(256, 2, 256, 2, 3).astype(np.float32).mean(axis=(1, 3))
    crop = astronaut[40:340, 60:280]                                  # 300×220, non-square
    upscale = np.repeat(np.repeat(astronaut[::2, ::2], 3, axis=0), 3, axis=1)[:720, :640]  # 720×640
    return {
        "512x512": astronaut,
        "256x256": np.round(small).astype(np.uint8),
        "crop300x220": np.ascontiguousarray(crop),
        "up720x640": np.ascontiguousarray(upscale),
    }


def mediapipe_side(folder):
    import mediapipe as mp
    from skimage import data

    astronaut = np.ascontiguousarray(data.astronaut())
    for name, image in cases(astronaut).items():
        with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as segmenter:
            result = segmenter.process(image)
        np.save(os.path.join(folder, f"{name}.input.npy"), image)
        np.save(os.path.join(folder, f"{name}.mediapipe.npy"), np.asarray(result.segmentation_mask, np.float32))
    print(json.dumps({"mediapipe": mp.__version__}))


def iou(a, b):
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def torch_side(folder, model_path, reference_png):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(2)
    model = torch.jit.load(model_path).eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    names = sorted(f[: -len(".input.npy")] for f in os.listdir(folder) if f.endswith(".input.npy"))
    rows = []
    with torch.no_grad():
        for name in names:
            image = np.load(os.path.join(folder, f"{name}.input.npy"))
            reference = np.load(os.path.join(folder, f"{name}.mediapipe.npy"))
            rgb = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float() / 255.0
            h, w = image.shape[:2]
            model_p = torch.sigmoid(model((rgb - mean) / std))[0, 0].numpy()
            small = rgb if (h, w) == (256, 256) else F.interpolate(rgb, size=(256, 256), mode="bilinear",
                                                                   align_corners=False, antialias=True)
            element_p = torch.sigmoid(model((small - mean) / std))
            element_p = F.interpolate(element_p, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()
            for path, p in (("model", model_p), ("element", element_p)):
                rows.append({"case": name, "path": path, "iou": iou(p >= 0.5, reference >= 0.5),
                             "max_abs_diff": float(np.abs(p - reference).max()),
                             "mean_abs_diff": float(np.abs(p - reference).mean()),
                             "person_fraction": float((reference >= 0.5).mean())})
            if name == "512x512" and reference_png:
                from PIL import Image
                mask = np.where(reference >= 0.5, 255, 0).astype(np.uint8)
                Image.fromarray(mask, mode="L").save(reference_png, optimize=True)
                print(f"wrote {reference_png} ({os.path.getsize(reference_png)} bytes): MediaPipe's mask of the "
                      f"512x512 astronaut, threshold 0.5, 8-bit grey 0/255")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mediapipe-side", metavar="FOLDER", help=argparse.SUPPRESS)
    parser.add_argument("--venv-python", default="/tmp/mpvenv/bin/python",
                        help="a Python 3.11 with mediapipe==0.10.14, numpy<2 and scikit-image")
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--model", default=os.path.join(here, "selfie.pt"))
    parser.add_argument("--write-reference", metavar="PNG",
                        help="also write MediaPipe's 512x512 mask (threshold 0.5) as an 8-bit PNG")
    args = parser.parse_args()
    if args.mediapipe_side:
        mediapipe_side(args.mediapipe_side)
        return
    with tempfile.TemporaryDirectory(prefix="selfie-verify-") as folder:
        subprocess.run([args.venv_python, os.path.abspath(__file__), "--mediapipe-side", folder], check=True,
                       env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")})
        rows = torch_side(folder, args.model, args.write_reference)
    print(f"{'case':<12} {'path':<8} {'IoU@0.5':>9} {'max|dp|':>10} {'mean|dp|':>10} {'person':>7}")
    for r in rows:
        print(f"{r['case']:<12} {r['path']:<8} {r['iou']:>9.5f} {r['max_abs_diff']:>10.2e} "
              f"{r['mean_abs_diff']:>10.2e} {r['person_fraction']:>7.3f}")


if __name__ == "__main__":
    main()
