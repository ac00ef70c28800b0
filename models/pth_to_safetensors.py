#!/usr/bin/env python3
"""Converts a BiRefNet PyTorch checkpoint (.pth: a state dict saved with torch.save, as the
official GitHub releases ship them) into the .safetensors file that birefnetmatte reads.

    python3 pth_to_safetensors.py BiRefNet-general-epoch_244.pth general.safetensors [--patch-order legacy]

Why a converter and not a loader in the engine: a .pth is a Python pickle, which only Python's
torch.load reads in full (libtorch's C++ unpickler turns the OrderedDict of a state dict into
None), and unpickling is code the engine should not run on a user's file. torch.load runs here
with weights_only=True, which refuses anything but tensors and plain containers (--trust-pickle
lifts that for a file you trust, e.g. one whose training state this torch's safe loader does not know).

The state dict may be the whole file or sit under a key such as "model" or "state_dict" (with
training state beside it). Key prefixes ("module.", "_orig_mod.") are kept: the engine strips
them. Tensors keep their dtype (float32, float16, bfloat16, int64); float64 becomes float32 and
other integer types int64. --patch-order records the image-patch order the weights were trained
with in the file's metadata (legacy for weights from before 2024-11-05; see the README), so the
element needs no patch-order property for this file.

Needs only Python 3 and torch (Debian: python3-torch), no safetensors package.
"""
import argparse
import json
import struct
import sys

import torch

SAFETENSORS_DTYPE = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "weights")


def fail(message):
    print(f"pth_to_safetensors: {message}", file=sys.stderr)
    sys.exit(1)


def load(path, trust):
    if trust:
        return torch.load(path, map_location="cpu")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # a torch without weights_only (before 1.13)
        fail(f"this torch ({torch.__version__}) cannot load {path} safely (no weights_only); "
             "if you trust the file, rerun with --trust-pickle")
    except Exception as e:  # noqa: BLE001: every reason is reported with the file's name
        hint = ""
        if "Unsupported" in str(e):
            hint = ("; it holds Python objects besides tensors and plain containers (a whole model, or training "
                    "state this torch's safe loader does not know): if you trust the file, rerun with "
                    "--trust-pickle, or save torch.save(model.state_dict(), path) where its code is")
        fail(f"{path} could not be read as a PyTorch checkpoint: {type(e).__name__}: {e}{hint}")


def is_state_dict(value):
    return isinstance(value, dict) and value and all(isinstance(v, torch.Tensor) for v in value.values())


def find_state_dict(checkpoint, path):
    if isinstance(checkpoint, torch.nn.Module):  # a whole model (only loads with --trust-pickle)
        return checkpoint.state_dict()
    if is_state_dict(checkpoint):
        return checkpoint
    if isinstance(checkpoint, dict):
        for key in STATE_DICT_KEYS:
            if is_state_dict(checkpoint.get(key)):
                return checkpoint[key]
        found = [k for k, v in checkpoint.items() if is_state_dict(v)]
        if len(found) == 1:
            return checkpoint[found[0]]
        keys = ", ".join(map(str, list(checkpoint)[:8]))
        fail(f"{path} holds no state dict (a dict whose values are all tensors) at its top level or under one key; "
             f"its keys: {keys}")
    fail(f"{path} holds a {type(checkpoint).__name__}, not a state dict: save the model with "
         "torch.save(model.state_dict(), path)")


def as_storable(name, tensor):
    t = tensor.detach().cpu()
    if t.dtype == torch.float64:
        t = t.float()
    elif t.dtype in (torch.int8, torch.int16, torch.int32, torch.uint8, torch.bool):
        t = t.long()
    if t.dtype not in SAFETENSORS_DTYPE:
        fail(f"tensor '{name}' has dtype {t.dtype}, which a BiRefNet checkpoint does not use")
    return t.contiguous()


def raw_bytes(t):
    # bfloat16 has no NumPy dtype: its bits travel as int16 (both little-endian, 2 bytes).
    return (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()


def write_safetensors(tensors, path, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        data = raw_bytes(t)
        header[name] = {"dtype": SAFETENSORS_DTYPE[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # the tensor data starts 8-byte aligned
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
        for data in blobs:
            out.write(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="the .pth file (torch.save of a state dict)")
    parser.add_argument("output", help="the .safetensors file to write")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="load with full unpickling (runs code the file names: only for files you trust)")
    parser.add_argument("--patch-order", choices=("legacy", "current"),
                        help="record the image-patch order the weights were trained with (legacy: before 2024-11-05)")
    args = parser.parse_args()
    state = find_state_dict(load(args.checkpoint, args.trust_pickle), args.checkpoint)
    tensors = {str(name): as_storable(str(name), t) for name, t in state.items()}
    metadata = {"format": "pt", "converted_from": args.checkpoint.rsplit("/", 1)[-1]}
    if args.patch_order:
        metadata["patch_order"] = args.patch_order
    write_safetensors(tensors, args.output, metadata)
    total = sum(t.numel() for t in tensors.values())
    print(f"wrote {args.output}: {len(tensors)} tensors, {total:,} values")


if __name__ == "__main__":
    main()
