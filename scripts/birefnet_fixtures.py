#!/usr/bin/env python3
"""The repository's copy of the BiRefNet reference fixtures (Tests/Fixtures/birefnet).

The shared fixtures (../shared/fixtures/birefnet, README.md there is the spec) store each case's
model `input` and every captured tensor: 24 MB. The repository keeps a copy small enough to commit:
- `input` is dropped where the spec's image formula makes it (every case but the frame case, whose
  input comes out of torch's antialiased resize). The file's metadata `input_images` names the
  images ("0,1"); `model_input()` makes the exact float32 tensor again, bit for bit (checked here
  before anything is dropped, and by the Swift tests against the shared set where it is present);
- the largest intermediate tensors are dropped (see KEEP); `logits` and the tensors that localise a
  fault along the network stay.

  python3 scripts/birefnet_fixtures.py trim ../shared/fixtures/birefnet Tests/Fixtures/birefnet

Pure Python (no numpy or torch), so the GPU check and the benchmarks can import it anywhere.
"""
import array
import json
import math
import os
import shutil
import struct
import sys

# Image k of the spec: (phase, disc (cx, cy, r), rectangle (x0, y0, x1, y1)).
IMAGES = {
    0: (0.0, (0.38, 0.42, 0.22), (0.62, 0.15, 0.90, 0.55)),
    1: (1.0, (0.60, 0.62, 0.18), (0.10, 0.10, 0.35, 0.80)),
    2: (2.0, (0.50, 0.45, 0.25), (0.08, 0.60, 0.30, 0.92)),
}
DISC_RGB = (0.95, 0.85, 0.30)
RECT_RGB = (0.15, 0.35, 0.85)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

# What the repository copy keeps of each case besides `logits` (every case stays under 2 MiB).
KEEP = {
    "variant_a_swin_v1_t_256x256": [
        "features.3", "debug.features_half.2", "debug.features_half.3", "debug.squeeze_aspp", "debug.ipt_blk5",
        "debug.decoder_block4", "debug.decoder_block4_aspp", "debug.gdt_attn_4_logit", "debug.gdt_attn_3_logit",
        "debug.gdt_attn_2_logit"],
    "variant_b_swin_v1_l_256x256": [
        "features.3", "debug.features_half.2", "debug.features_half.3", "debug.squeeze_aspp", "debug.ipt_blk5",
        "debug.decoder_block4", "debug.decoder_block4_aspp", "debug.gdt_attn_4_logit", "debug.gdt_attn_3_logit",
        "debug.gdt_attn_2_logit"],
}
# The images of each case whose input the formula makes (the spec's "Cases" table).
CASE_IMAGES = {
    "variant_a_swin_v1_t_256x256": [0, 1],
    "variant_a_swin_v1_t_256x384": [0],
    "variant_a_swin_v1_t_256x256_patchorder-legacy": [0],
    "variant_b_swin_v1_l_256x256": [0],
}


def image(k, h, w):
    """Image k at h x w: float64 RGB in [0, 1], planar (3*h*w values, CHW)."""
    phase, (cx, cy, r), (x0, y0, x1, y1) = IMAGES[k]
    planes = ([], [], [])
    for y in range(h):
        v = (y + 0.5) / h
        for x in range(w):
            u = (x + 0.5) / w
            rgb = (0.2 + 0.6 * u, 0.2 + 0.6 * v, 0.5 + 0.3 * math.sin(2 * math.pi * (u + v) + phase))
            if math.sqrt(((u - cx) * w) ** 2 + ((v - cy) * h) ** 2) / min(h, w) < r:
                rgb = DISC_RGB
            if x0 <= u <= x1 and y0 <= v <= y1:
                rgb = RECT_RGB
            for c in range(3):
                planes[c].append(rgb[c])
    return planes[0] + planes[1] + planes[2]


def f32(values):
    """Rounds to float32 (nearest even) and back to Python floats."""
    return array.array("f", values).tolist()


def model_input(images, h, w):
    """The normalised float32 model input (B, 3, h, w) as little-endian bytes. Each operation is
    rounded to float32 as torch does: a double result of two float32 operands rounds correctly."""
    mean, std = f32(MEAN), f32(STD)
    out = array.array("f")
    for k in images:
        img = f32(image(k, h, w))
        n = h * w
        for c in range(3):
            diff = f32([p - mean[c] for p in img[c * n:(c + 1) * n]])
            out.extend([d / std[c] for d in diff])
    if sys.byteorder != "little":
        out.byteswap()
    return out.tobytes()


def read(path):
    """(header, data bytes) of a safetensors file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        return header, f.read()


def fixture_input(path):
    """(shape, float32 bytes) of a fixture case's model input: stored, or made from `input_images`."""
    header, data = read(path)
    if "input" in header:
        e = header["input"]
        return e["shape"], data[e["data_offsets"][0]:e["data_offsets"][1]]
    images = [int(k) for k in header["__metadata__"]["input_images"].split(",")]
    _, _, h, w = header["logits"]["shape"]
    return [len(images), 3, h, w], model_input(images, h, w)


def write(path, header, tensors):
    """Writes a safetensors file: metadata plus (name, entry, bytes) in the given order."""
    out, blobs, offset = {"__metadata__": header["__metadata__"]}, [], 0
    for name, entry, blob in tensors:
        out[name] = {"dtype": entry["dtype"], "shape": entry["shape"], "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(out, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def trim(shared, dest):
    for name in sorted(os.listdir(shared)):
        src, dst = os.path.join(shared, name), os.path.join(dest, name)
        case = name[:-len(".safetensors")] if name.endswith(".safetensors") else None
        if case not in CASE_IMAGES:
            shutil.copyfile(src, dst)
            continue
        header, data = read(src)
        e = header["input"]
        _, _, h, w = e["shape"]
        if model_input(CASE_IMAGES[case], h, w) != data[e["data_offsets"][0]:e["data_offsets"][1]]:
            sys.exit(f"{src}: the formula's input differs from the stored one; nothing written")
        keep = ["logits"] + KEEP.get(case, [k for k in header if k not in ("__metadata__", "input", "logits")])
        header["__metadata__"]["input_images"] = ",".join(map(str, CASE_IMAGES[case]))
        tensors = [(k, header[k], data[header[k]["data_offsets"][0]:header[k]["data_offsets"][1]]) for k in keep]
        write(dst, header, tensors)
        print(f"{name}: kept {', '.join(keep)}; {os.path.getsize(dst) / 2**20:.2f} MiB")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "trim":
        sys.exit(__doc__)
    trim(sys.argv[2], sys.argv[3])
