#!/usr/bin/env python3
"""Python side of benchmarks/cpu-runtimes.sh: the official BiRefNet with bdrand weights, run by
PyTorch, ONNX Runtime and OpenVINO on the CPU.

  cpu_runtimes.py prepare --variant lite|general --official DIR --work DIR [--batches 1,4]
      bdrand weights (from Sources/CBDRand; the official model's logits are checked against the
      fixture logits), ONNX export (one fixed-shape file per batch), parity check.
  cpu_runtimes.py verify-weights --variant ... --bench-weights FILE ...
      the weights birefnet-bench wrote, compared bit for bit with ours.
  cpu_runtimes.py time --runtime torch|ort|ov-f32|ov-bf16 --variant ... --batch B --work DIR
      one timing run; prints a line `RESULT <json>`.

The weights are never downloaded: every float tensor is made with the bdrand rule of
Tests/Fixtures/birefnet/README.md by the project's one implementation of it (Sources/CBDRand).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import types

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
from birefnet_fixtures import fixture_input  # noqa: E402

VARIANTS = {"lite": "swin_v1_t", "general": "swin_v1_l"}
SIZE = 512
THREADS = int(os.environ.get("CPU_RUNTIMES_THREADS", "2"))
FIXTURES = os.environ.get("BIREFNET_FIXTURES", "")

# ---------------------------------------------------------------- bdrand ----
# The rule exists once, in C (Sources/CBDRand): it is compiled here as a small shared library and
# called through ctypes, so these weights are those of birefnet-bench and the tests by construction.
_BDRAND = None


def bdrand_library(work: str):
    global _BDRAND
    if _BDRAND is None:
        import ctypes
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        src = os.path.join(repo, "Sources", "CBDRand")
        lib = os.path.join(work, "libbdrand.so")
        c_file = os.path.join(src, "bdrand.c")
        if not os.path.exists(lib) or os.path.getmtime(lib) < os.path.getmtime(c_file):
            subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-I", os.path.join(src, "include"), c_file, "-lm",
                            "-o", lib], check=True)
        _BDRAND = ctypes.CDLL(lib)
        _BDRAND.bdr_bdrand_fill.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int64), ctypes.c_int,
                                            ctypes.c_uint64, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t]
        _BDRAND.bdr_bdrand_fill.restype = ctypes.c_int
    return _BDRAND


def bdrand(key: str, shape, work: str) -> np.ndarray:
    import ctypes
    out = np.empty(shape, dtype=np.float32)
    dims = (ctypes.c_int64 * max(1, len(shape)))(*shape)
    ok = bdrand_library(work).bdr_bdrand_fill(key.encode("utf-8"), dims, len(shape), 0,
                                               out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), out.size)
    if not ok:
        raise ValueError(f"bdrand has no role for {key} {tuple(shape)}")
    return out


# ------------------------------------------------------- official model ----
def import_official(official: str, backbone: str, sdpa: bool = False):
    """Import the official BiRefNet with the fixture README's two config.py changes, made in
    memory (backbone list index, SDPA off unless `sdpa`) so that one checkout serves both variants.
    A second call in the same process needs the `models` modules dropped from sys.modules first
    (they keep the Config they were imported with)."""
    with open(os.path.join(official, "config.py")) as f:
        src = f.read()
    m = re.search(r"self\.bb = \[(.*?)\]\[(\d+)\]", src, re.S)
    names = re.findall(r"'([^']+)'", m.group(1))
    src = src[:m.start(2)] + str(names.index(backbone)) + src[m.end(2):]
    src, n = re.subn(r"self\.SDPA_enabled = True", f"self.SDPA_enabled = {sdpa}", src)
    assert n == 1, "SDPA_enabled line not found in config.py"
    config = types.ModuleType("config")
    config.__file__ = os.path.join(official, "config.py")
    exec(compile(src, config.__file__, "exec"), config.__dict__)
    assert config.Config().bb == backbone and config.Config().SDPA_enabled is sdpa
    sys.modules["config"] = config
    sys.dont_write_bytecode = True  # leave the checkout as it was
    sys.path.insert(0, official)
    from models.birefnet import BiRefNet  # noqa: E402
    return BiRefNet


def build_official(official: str, backbone: str, work: str):
    import torch
    BiRefNet = import_official(official, backbone)
    model = BiRefNet(bb_pretrained=False).eval()
    wpath = os.path.join(work, f"bdrand_{backbone}.pt")
    if os.path.exists(wpath):
        sd = torch.load(wpath)
    else:
        sd = {}
        for k, v in model.state_dict().items():
            if v.dtype == torch.float32:
                sd[k] = torch.from_numpy(bdrand(k, tuple(v.shape), work))
            elif k.endswith("num_batches_tracked"):
                sd[k] = torch.zeros_like(v)
            elif k.endswith("relative_position_index"):
                W = int(round(np.sqrt(v.shape[0])))
                p = np.arange(W * W)
                hp, wp = p // W, p % W
                idx = (hp[:, None] - hp[None, :] + W - 1) * (2 * W - 1) + (wp[:, None] - wp[None, :] + W - 1)
                assert torch.equal(v, torch.from_numpy(idx).to(v.dtype)), k
                sd[k] = v.clone()
            else:
                raise RuntimeError(f"unexpected tensor {k} {v.dtype}")
        torch.save(sd, wpath)
    model.load_state_dict(sd, strict=True)
    return model, sd


def logits_module(model):
    """model(x)[-1]: the final logits (B,1,H,W), before sigmoid."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.model = m

        def forward(self, x):
            return self.model(x)[-1]
    return Logits(model).eval()


def make_input(batch: int) -> np.ndarray:
    """A deterministic normalised image batch (smooth pattern plus noise)."""
    rng = np.random.default_rng(1234)
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    img = np.stack([0.2 + 0.6 * x, 0.2 + 0.6 * y, 0.5 + 0.3 * np.sin(2 * np.pi * (x + y))])
    imgs = np.clip(img[None] + 0.05 * rng.standard_normal((batch, 3, SIZE, SIZE)), 0, 1).astype(np.float32)
    mean = np.array([0.485, 0.456, 0.406], np.float32)[None, :, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[None, :, None, None]
    return ((imgs - mean) / std).astype(np.float32)


# --------------------------------------------------------------- export ----
def onnx_path(work, backbone, batch):
    return os.path.join(work, f"birefnet_{backbone}_{SIZE}_b{batch}.onnx")


def export_onnx(module, backbone: str, batch: int, work: str) -> str:
    """torch 1.13 exports up to opset 17, ONNX has DeformConv from opset 19: deform_conv2d is
    emitted as DeformConv in a placeholder domain, the graph is exported at opset 17, converted
    to opset 19 with onnx's version converter, and the placeholder domain is then renamed to the
    default one."""
    import onnx
    import torch
    from torch.onnx import register_custom_op_symbolic
    from torch.onnx import symbolic_helper as sh

    path = onnx_path(work, backbone, batch)
    if os.path.exists(path):
        return path

    @sh.parse_args("v", "v", "v", "v", "v", "i", "i", "i", "i", "i", "i", "i", "i", "b")
    def deform_conv2d(g, inp, weight, offset, mask, bias, sh_, sw, ph, pw, dh, dw, groups, offset_groups, use_mask):
        kh, kw = sh._get_tensor_sizes(weight)[2:4]
        args = [inp, weight, offset, bias] + ([mask] if use_mask else [])
        return g.op("bdtmp::DeformConv", *args, dilations_i=[dh, dw], group_i=groups, offset_group_i=offset_groups,
                    kernel_shape_i=[kh, kw], pads_i=[ph, pw, ph, pw], strides_i=[sh_, sw])

    register_custom_op_symbolic("torchvision::deform_conv2d", deform_conv2d, 17)
    tmp = path + ".opset17"
    x = torch.from_numpy(make_input(batch))
    t0 = time.time()
    with torch.no_grad():
        torch.onnx.export(module, (x,), tmp, opset_version=17, input_names=["input"], output_names=["logits"],
                          do_constant_folding=True, custom_opsets={"bdtmp": 1})
    m = onnx.load(tmp)
    n_deform = sum(1 for n in m.graph.node if n.op_type == "DeformConv")
    from onnx import version_converter
    m = version_converter.convert_version(m, 19)
    for n in m.graph.node:
        if n.domain == "bdtmp":
            n.domain = ""
    keep = [o for o in m.opset_import if o.domain != "bdtmp"]
    del m.opset_import[:]
    m.opset_import.extend(keep)
    onnx.checker.check_model(m, full_check=False)
    onnx.save(m, path)
    os.remove(tmp)
    ops = sorted({n.op_type for n in m.graph.node})
    print(f"onnx: {os.path.basename(path)} opset {m.opset_import[0].version}, {len(m.graph.node)} nodes, "
          f"{n_deform} DeformConv, exported in {time.time() - t0:.0f} s; ops: {' '.join(ops)}")
    return path


# ------------------------------------------------------------- runtimes ----
def ort_session(path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ov_deform_conv(node):
    """ONNX DeformConv (opset 19) -> OpenVINO DeformableConvolution-8. OpenVINO's ONNX frontend
    has no rule for DeformConv-19 ("No conversion rule found for operations: DeformConv-19"), so
    it is given one. bilinear_interpolation_pad=True is torchvision's border rule (a point within
    one pixel outside the map samples zero-padded corners)."""
    import openvino.opset8 as o8
    n = node.get_input_size()
    x, w, offset = (node.get_input(i) for i in range(3))
    pads = list(node.get_attribute("pads", [0, 0, 0, 0]))
    y = o8.deformable_convolution(x, offset, w, list(node.get_attribute("strides", [1, 1])), pads[:2], pads[2:],
                                  list(node.get_attribute("dilations", [1, 1])),
                                  mask=node.get_input(4) if n > 4 else None, group=int(node.get_attribute("group", 1)),
                                  deformable_group=int(node.get_attribute("offset_group", 1)),
                                  bilinear_interpolation_pad=True)
    if n > 3:
        y = o8.add(y, o8.reshape(node.get_input(3), [1, -1, 1, 1], False))
    return [y.output(0)]


def ov_compiled(path, precision):
    import openvino as ov
    from openvino.frontend.onnx import ConversionExtension
    core = ov.Core()
    core.add_extension(ConversionExtension("DeformConv", ov_deform_conv))
    model = core.read_model(path)
    cfg = {"INFERENCE_NUM_THREADS": THREADS, "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY",
           "NUM_STREAMS": 1}
    cm = core.compile_model(model, "CPU", cfg)
    t = cm.get_property("INFERENCE_PRECISION_HINT")
    return cm, (t.get_type_name() if hasattr(t, "get_type_name") else str(t))


def make_runner(runtime, variant, batch, work, official):
    """Returns (run(x) -> logits ndarray, info string)."""
    backbone = VARIANTS[variant]
    if runtime == "torch":
        import torch
        torch.set_num_threads(THREADS)
        model, _ = build_official(official, backbone, work)
        mod = logits_module(model)

        def run(x):
            with torch.inference_mode():
                return mod(torch.from_numpy(x)).numpy()
        return run, f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    path = onnx_path(work, backbone, batch)
    if not os.path.exists(path):
        raise RuntimeError(f"{path} missing: run prepare first")
    if runtime == "ort":
        import onnxruntime as ort
        sess = ort_session(path)
        return (lambda x: sess.run(None, {"input": x})[0]), f"onnxruntime {ort.__version__}, {THREADS} threads"
    if runtime in ("ov-f32", "ov-bf16"):
        import openvino as ov
        cm, prec = ov_compiled(path, runtime.split("-")[1])
        req = cm.create_infer_request()

        def run(x):
            return req.infer({0: x})[0].copy()
        return run, f"openvino {ov.__version__}, {cm.get_property('INFERENCE_NUM_THREADS')} threads, precision {prec}"
    raise ValueError(runtime)


# ------------------------------------------------------------- commands ----
def cmd_prepare(a):
    import torch
    torch.set_num_threads(THREADS)
    os.makedirs(a.work, exist_ok=True)
    backbone = VARIANTS[a.variant]
    t0 = time.time()
    model, sd = build_official(a.official, backbone, a.work)
    print(f"[{a.variant}] official BiRefNet {backbone} with bdrand weights: {len(sd)} keys, "
          f"{sum(v.numel() for v in sd.values()):,} elements ({time.time() - t0:.0f} s)")

    # The official module with these weights against the fixture logits (end-to-end weight check).
    fx = {"swin_v1_t": "variant_a_swin_v1_t_256x256", "swin_v1_l": "variant_b_swin_v1_l_256x256"}[backbone]
    fpath = os.path.join(a.fixtures, fx + ".safetensors")
    if os.path.exists(fpath):
        from safetensors.numpy import load_file
        f = load_file(fpath)
        shape, blob = fixture_input(fpath)
        with torch.inference_mode():
            got = model(torch.from_numpy(np.frombuffer(blob, np.float32).reshape(shape).copy()))[-1].numpy()
        err = np.abs(got - f["logits"]).max() / np.abs(f["logits"]).max()
        print(f"fixture {fx}: official torch logits vs fixture max|d|/max|ref| = {err:.2e} (fixture bound 1e-3)")
        assert err <= 1e-3
    else:
        print(f"fixture {fpath} not found: end-to-end weight check skipped")

    module = logits_module(model)
    for batch in a.batches:
        path = export_onnx(module, backbone, batch, a.work)
        x = make_input(batch)
        with torch.inference_mode():
            ref = module(torch.from_numpy(x)).numpy()
        scale = float(np.abs(ref).max())
        for runtime in ("ort", "ov-f32", "ov-bf16"):
            try:
                run, info = make_runner(runtime, a.variant, batch, a.work, a.official)
                out = run(x)
                d = np.abs(out - ref)
                print(f"parity [{a.variant} b{batch}] {runtime:7s} vs official torch: max abs err {d.max():.3e}, "
                      f"max|ref| {scale:.2f}, rel {d.max() / scale:.2e}, RMS err {np.sqrt((d ** 2).mean()):.2e}, "
                      f"sign flips {int(((out > 0) != (ref > 0)).sum())}/{ref.size}  ({info})")
            except Exception as e:  # report, do not fake a row
                msg = str(e).strip().splitlines()
                print(f"parity [{a.variant} b{batch}] {runtime:7s} FAILED: {type(e).__name__}: "
                      f"{' | '.join(msg[:6])[:800]}")


def cmd_verify_weights(a):
    """Every tensor of a bdrand .safetensors written by birefnet-bench against ours, bit for bit."""
    from safetensors.numpy import load_file
    backbone = VARIANTS[a.variant]
    if not os.path.exists(a.bench_weights):
        print(f"bdrand: {a.bench_weights} not written by birefnet-bench: bit-for-bit comparison skipped")
        return
    import torch
    sd = torch.load(os.path.join(a.work, f"bdrand_{backbone}.pt"))
    theirs = load_file(a.bench_weights)
    missing = [k for k in theirs if k not in sd]
    differ = [k for k in theirs if k in sd and not np.array_equal(theirs[k], sd[k].numpy())]
    unused = sorted(set(sd) - set(theirs))
    print(f"bdrand [{a.variant}]: {len(theirs) - len(missing) - len(differ)}/{len(theirs)} tensors written by "
          f"birefnet-bench are bit-identical to ours ({len(unused)} keys of the official state_dict not in its "
          f"file: training-only / num_batches_tracked)")
    if missing or differ:
        raise SystemExit(f"bdrand mismatch: missing {missing[:5]}, different {differ[:5]}")


def cmd_time(a):
    try:
        run, info = make_runner(a.runtime, a.variant, a.batch, a.work, a.official)
        x = make_input(a.batch)
        for _ in range(a.warmup):
            run(x)
        times = []
        for _ in range(a.iters):
            t0 = time.perf_counter()
            run(x)
            times.append((time.perf_counter() - t0) * 1000.0 / a.batch)
        res = {"runtime": a.runtime, "variant": a.variant, "batch": a.batch, "ms": times, "info": info,
               "mean": statistics.fmean(times)}
    except Exception as e:
        res = {"runtime": a.runtime, "variant": a.variant, "batch": a.batch, "error": f"{type(e).__name__}: "
               + " | ".join(str(e).strip().splitlines()[:4])[:400]}
    print("RESULT " + json.dumps(res))
    print("MS " + (f"{res['mean']:.1f}" if "mean" in res else "ERR:" + res["error"].replace("\t", " ")), flush=True)


def cmd_versions(_):
    import platform
    import einops
    import onnx
    import onnxruntime
    import openvino
    import timm
    import torch
    import torchvision
    print(f"python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"numpy {np.__version__}, timm {timm.__version__}, einops {einops.__version__}, onnx {onnx.__version__}, "
          f"onnxruntime {onnxruntime.__version__}, openvino {openvino.__version__.split('-')[0]}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("prepare", "time", "verify-weights"):
        s = sub.add_parser(name)
        s.add_argument("--variant", choices=VARIANTS, required=True)
        s.add_argument("--official", required=True, help="checkout of the official BiRefNet code")
        s.add_argument("--work", required=True, help="folder for weights and exported models")
    pp = sub.choices["prepare"]
    pp.add_argument("--batches", type=lambda s: [int(b) for b in s.split(",")], default=[1])
    pp.add_argument("--fixtures", default=FIXTURES)
    tp = sub.choices["time"]
    tp.add_argument("--runtime", choices=["torch", "ort", "ov-f32", "ov-bf16"], required=True)
    tp.add_argument("--batch", type=int, default=1)
    tp.add_argument("--warmup", type=int, default=1)
    tp.add_argument("--iters", type=int, default=3)
    sub.choices["verify-weights"].add_argument("--bench-weights", required=True,
                                               help="a bdrand .safetensors written by birefnet-bench")
    sub.add_parser("versions")
    a = p.parse_args()
    {"prepare": cmd_prepare, "time": cmd_time, "verify-weights": cmd_verify_weights, "versions": cmd_versions}[a.cmd](a)


if __name__ == "__main__":
    main()
