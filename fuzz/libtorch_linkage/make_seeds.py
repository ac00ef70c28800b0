#!/usr/bin/env python3
"""Seeds for the libtorch_linkage fuzz target: small ELF64 shared-object images with the structures
LibtorchLinkage reads (program headers with PT_LOAD and PT_DYNAMIC, DT_NEEDED, DT_RUNPATH or
DT_RPATH, DT_STRTAB, DT_STRSZ), so the fuzzer starts inside the parser, not at the magic number.
    python3 fuzz/libtorch_linkage/make_seeds.py fuzz/corpus/libtorch_linkage
"""
import os
import struct
import sys


def elf(needed, runpath=None, rpath=None, vaddr=0x1000):
    strings = b"\0"
    offsets = {}
    for s in needed + [p for p in (runpath, rpath) if p]:
        offsets[s] = len(strings)
        strings += s.encode() + b"\0"
    header_size, ph_size, ph_count = 64, 56, 2
    dyn_entries = [(1, offsets[n]) for n in needed]
    if runpath:
        dyn_entries.append((29, offsets[runpath]))
    if rpath:
        dyn_entries.append((15, offsets[rpath]))
    strtab_offset = header_size + ph_size * ph_count
    dyn_offset = strtab_offset + len(strings)
    dyn_entries += [(5, vaddr + strtab_offset), (10, len(strings)), (0, 0)]
    dynamic = b"".join(struct.pack("<QQ", t, v) for t, v in dyn_entries)
    total = dyn_offset + len(dynamic)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, header_size, 0, 0, header_size, ph_size, ph_count,
                                 64, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 5, 0, vaddr, vaddr, total, total, 0x1000)
    dyn = struct.pack("<IIQQQQQQ", 2, 6, dyn_offset, vaddr + dyn_offset, vaddr + dyn_offset, len(dynamic),
                      len(dynamic), 8)
    return header + load + dyn + strings + dynamic


SEEDS = {
    "debian-libtorch": elf(["libtorch.so.1.13", "libtorch_cpu.so.1.13", "libc10.so.1.13", "libc.so.6"],
                           runpath="$ORIGIN"),
    "pip-torch-cuda": elf(["libtorch_cpu.so", "libtorch_cuda.so", "libc10_cuda.so", "libc10.so", "libcudart.so.13"],
                          runpath="/opt/venv/lib/python3.12/site-packages/torch/lib"),
    "rpath-only": elf(["libc10.so", "libm.so.6"], rpath="/usr/local/lib"),
    "no-torch": elf(["libstdc++.so.6"]),
}

if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
