#!/usr/bin/python3
"""Convert MediaPipe's selfie segmentation model into a TorchScript model for Backdrop.

Run with Debian's Python, which has torch:

    /usr/bin/python3 models/selfie/convert_selfie.py [--output models/selfie/selfie.pt]

What it does:
  1. Fetches the mediapipe 0.10.14 wheel (cp311, manylinux x86_64; no dependencies) with pip into a
     cache folder (--cache-dir, else $BACKDROP_CACHE_DIR, else $XDG_CACHE_HOME/backdrop/selfie, else
     ~/.cache/backdrop/selfie) and extracts
     mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite (Apache-2.0; 249,505 bytes;
     checked by size and sha256). Newer mediapipe releases no longer carry this file.
  2. Parses the TFLite flatbuffer with the `tflite` package (installed with pip into the cache folder
     if Python cannot import it) and rebuilds the graph op by op as an NCHW torch module:
     fp16 constants behind DEQUANTIZE become fp32 buffers; TF "SAME" padding (asymmetric for
     stride 2) becomes an explicit F.pad; OHWI (conv) and 1HWC (depthwise) weights are permuted to
     OIHW; the custom op Convolution2DTransposeBias (kernel 2, stride 2: a ConvTranspose2d) becomes
     the equivalent 1×1 convolution + pixel_shuffle, which every device and dtype runs. The final LOGISTIC is
     dropped: the network's output is its pre-sigmoid logits (they are huge, about -800…+360, so
     they are taken as they are, never recomputed from probabilities).
  3. Wraps it to Backdrop's TorchScript contract (DESIGN §6): ImageNet-normalised RGB [B,3,H,W]
     float, any H and W → logits [B,1,H,W]. Inside: undo the normalisation (RGB in [0,1]); when
     H×W is not 256×256, resample to 256×256 as MediaPipe's CPU graph does (stretched, no
     letterbox; corner-mapped bilinear sampling, zero border, rounded to 8 bits as OpenCV's warp
     of the 8-bit image), run the network, and bring the result back to H×W as MediaPipe does
     (probabilities resized bilinearly, half-pixel), expressed as logits: logit(p) where p is not
     saturated, the bilinearly resized logits where it is. At 256×256 it is the network alone.
  4. Checks the module on random inputs (other sizes and batch sizes, eager against TorchScript)
     and saves it with torch.jit (scripted wrapper around the traced network, not frozen, so the
     engine can move it to another device or dtype).

No Python is needed at run time: the engine loads the .pt with libtorch.
"""
import argparse
import hashlib
import os
import subprocess
import sys
import time
import zipfile

MEDIAPIPE_VERSION = "0.10.14"
TFLITE_MEMBER = "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"
TFLITE_SIZE = 249505
TFLITE_SHA256 = "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"
# Pure-Python flatbuffer bindings for the TFLite schema (versions this script was tested with).
TFLITE_PARSER_PACKAGES = ["tflite==2.18.0", "flatbuffers==25.12.19"]
NET_SIZE = 256
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def log(message):
    print(f"[convert_selfie] {message}", flush=True)


def default_cache_dir():
    if os.environ.get("BACKDROP_CACHE_DIR"):
        return os.environ["BACKDROP_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "backdrop", "selfie")


def sha256_of(data):
    return hashlib.sha256(data).hexdigest()


def check_tflite_bytes(data, where):
    if len(data) != TFLITE_SIZE:
        raise SystemExit(f"{where}: {len(data)} bytes, expected {TFLITE_SIZE}")
    digest = sha256_of(data)
    if digest != TFLITE_SHA256:
        raise SystemExit(f"{where}: sha256 {digest}, expected {TFLITE_SHA256}")


def pip(args):
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    log("running: " + " ".join(command))
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        sys.stdout.write(result.stdout)
        raise SystemExit(f"pip failed with exit code {result.returncode} (is pip installed? Debian: python3-pip)")


def fetch_tflite(cache_dir, tflite_override=None):
    """Returns the verified bytes of selfie_segmentation.tflite, fetching the wheel if needed."""
    if tflite_override:
        data = open(tflite_override, "rb").read()
        check_tflite_bytes(data, tflite_override)
        log(f"using {tflite_override} ({len(data)} bytes, sha256 ok)")
        return data
    os.makedirs(cache_dir, exist_ok=True)
    cached = os.path.join(cache_dir, "selfie_segmentation.tflite")
    if os.path.exists(cached):
        data = open(cached, "rb").read()
        if len(data) == TFLITE_SIZE and sha256_of(data) == TFLITE_SHA256:
            log(f"using cached {cached} ({len(data)} bytes, sha256 ok)")
            return data
        log(f"cached {cached} does not match the expected size/sha256; fetching again")
        os.remove(cached)
    wheel_dir = os.path.join(cache_dir, "wheel")
    wheels = [f for f in os.listdir(wheel_dir)] if os.path.isdir(wheel_dir) else []
    wheels = [f for f in wheels if f.startswith(f"mediapipe-{MEDIAPIPE_VERSION}-") and f.endswith(".whl")]
    if not wheels:
        # The model file is the same in every wheel of the release; ask for the cp311 manylinux one
        # explicitly so that this works from any Python version or machine.
        pip(["download", "--no-deps", "--only-binary=:all:", "--implementation", "cp",
             "--python-version", "3.11", "--abi", "cp311", "--platform", "manylinux2014_x86_64",
             "--dest", wheel_dir, f"mediapipe=={MEDIAPIPE_VERSION}"])
        wheels = [f for f in os.listdir(wheel_dir)
                  if f.startswith(f"mediapipe-{MEDIAPIPE_VERSION}-") and f.endswith(".whl")]
        if not wheels:
            raise SystemExit(f"pip download left no mediapipe {MEDIAPIPE_VERSION} wheel in {wheel_dir}")
    wheel = os.path.join(wheel_dir, sorted(wheels)[0])
    log(f"extracting {TFLITE_MEMBER} from {wheel} ({os.path.getsize(wheel)} bytes)")
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(TFLITE_MEMBER)
    except (zipfile.BadZipFile, KeyError) as error:
        raise SystemExit(f"{wheel}: cannot read {TFLITE_MEMBER}: {error} (delete the file to fetch it again)")
    check_tflite_bytes(data, f"{wheel}:{TFLITE_MEMBER}")
    with open(cached + ".tmp", "wb") as f:
        f.write(data)
    os.replace(cached + ".tmp", cached)
    log(f"{TFLITE_MEMBER}: {len(data)} bytes, sha256 {TFLITE_SHA256} ok")
    return data


def import_tflite(cache_dir):
    try:
        import tflite  # noqa: F401
    except ImportError:
        target = os.path.join(cache_dir, "pylib")
        if target not in sys.path:
            sys.path.insert(0, target)
        try:
            import tflite  # noqa: F401
        except ImportError:
            pip(["install", "--quiet", "--no-deps", "--target", target, *TFLITE_PARSER_PACKAGES])
            import importlib
            importlib.invalidate_caches()
    import tflite
    return tflite


# ---------------------------------------------------------------------------------------------
# TFLite graph → op list


def parse_graph(tflite, data):
    """Reads subgraph 0 into plain Python: tensors (name, shape, type, constant data) and ops."""
    import numpy as np

    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() != 1:
        raise SystemExit(f"expected one subgraph, found {model.SubgraphsLength()}")
    graph = model.Subgraphs(0)
    builtin_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    numpy_types = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16,
                   tflite.TensorType.INT32: np.int32}

    tensors = []
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        shape = t.ShapeAsNumpy().tolist() if t.ShapeLength() else []
        buffer = model.Buffers(t.Buffer())
        value = None
        if buffer.DataLength() > 0:
            if t.Type() not in numpy_types:
                raise SystemExit(f"tensor {t.Name().decode()}: unsupported constant type {t.Type()}")
            value = np.frombuffer(buffer.DataAsNumpy().tobytes(), dtype=numpy_types[t.Type()]).reshape(shape)
        tensors.append({"name": t.Name().decode(), "shape": shape, "type": t.Type(), "value": value})

    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == tflite.BuiltinOperator.CUSTOM:
            kind = code.CustomCode().decode()
        else:
            kind = builtin_names.get(builtin, f"builtin#{builtin}")
        ops.append({"kind": kind, "inputs": op.InputsAsNumpy().tolist(), "outputs": op.OutputsAsNumpy().tolist(),
                    "options": read_options(tflite, kind, op)})
    return tensors, ops, graph.InputsAsNumpy().tolist(), graph.OutputsAsNumpy().tolist()


def read_options(tflite, kind, op):
    import numpy as np

    table = op.BuiltinOptions()

    def typed(cls):
        options = cls()
        options.Init(table.Bytes, table.Pos)
        return options

    if kind == "CONV_2D":
        o = typed(tflite.Conv2DOptions)
        return {"padding": o.Padding(), "stride": (o.StrideH(), o.StrideW()),
                "dilation": (o.DilationHFactor(), o.DilationWFactor()), "act": o.FusedActivationFunction()}
    if kind == "DEPTHWISE_CONV_2D":
        o = typed(tflite.DepthwiseConv2DOptions)
        return {"padding": o.Padding(), "stride": (o.StrideH(), o.StrideW()),
                "dilation": (o.DilationHFactor(), o.DilationWFactor()), "act": o.FusedActivationFunction(),
                "multiplier": o.DepthMultiplier()}
    if kind == "AVERAGE_POOL_2D":
        o = typed(tflite.Pool2DOptions)
        return {"padding": o.Padding(), "stride": (o.StrideH(), o.StrideW()),
                "filter": (o.FilterHeight(), o.FilterWidth()), "act": o.FusedActivationFunction()}
    if kind in ("ADD", "MUL"):
        o = typed(tflite.AddOptions if kind == "ADD" else tflite.MulOptions)
        return {"act": o.FusedActivationFunction()}
    if kind == "RESIZE_BILINEAR":
        o = typed(tflite.ResizeBilinearOptions)
        return {"align_corners": bool(o.AlignCorners()), "half_pixel": bool(o.HalfPixelCenters())}
    if kind == "Convolution2DTransposeBias":
        # MediaPipe's custom op reads its options as TfLiteTransposeConvParams:
        # {TfLitePadding padding; int stride_width; int stride_height;} (int32 each).
        raw = op.CustomOptionsAsNumpy().tobytes() if op.CustomOptionsLength() else b""
        if len(raw) < 12:
            raise SystemExit(f"Convolution2DTransposeBias: unexpected custom options {raw.hex()}")
        padding, stride_w, stride_h = np.frombuffer(raw[:12], dtype="<i4").tolist()
        return {"padding": padding, "stride": (stride_h, stride_w)}
    return {}


# ---------------------------------------------------------------------------------------------
# The network as an NCHW torch module


def build_network(tensors, ops, graph_inputs, graph_outputs):
    import torch
    import torch.nn.functional as F

    PADDING_SAME, PADDING_VALID = 0, 1   # tflite.Padding
    ACT_NONE, ACT_RELU, ACT_RELU6 = 0, 1, 3  # tflite.ActivationFunctionType

    def nchw_const(array):
        """A constant as a broadcastable NCHW fp32 tensor (NHWC [1,1,1,C] → [1,C,1,1])."""
        t = torch.from_numpy(array.astype("float32").copy())
        if t.dim() == 4:
            t = t.permute(0, 3, 1, 2)
        elif t.dim() == 1:
            t = t.view(1, -1, 1, 1)
        elif t.dim() != 0:
            raise SystemExit(f"constant of shape {list(array.shape)} cannot be mapped to NCHW")
        return t.contiguous()

    def same_padding(size, kernel, stride, dilation):
        out = -(-size // stride)
        total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
        return total // 2, total - total // 2

    class SelfieNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.steps = []          # (callable kind, input names, output name, static arguments)
            self.constant_names = {}  # tensor index → buffer name
            self.counts = {}

    net = SelfieNet()
    constant = {}  # tensor index → numpy value (after DEQUANTIZE)
    for index, t in enumerate(tensors):
        if t["value"] is not None:
            constant[index] = t["value"]

    def buffer_for(index, transform):
        name = "c%d" % index
        if not hasattr(net, name):
            net.register_buffer(name, transform(constant[index]))
        return name

    def conv_weight(array):  # OHWI → OIHW
        return torch.from_numpy(array.astype("float32").copy()).permute(0, 3, 1, 2).contiguous()

    def depthwise_weight(array):  # 1HWC → C1HW
        return torch.from_numpy(array.astype("float32").copy()).permute(3, 0, 1, 2).contiguous()

    def transpose_weight(array):
        # A transposed convolution whose kernel equals its stride (k×k, stride k, no padding) writes
        # each input pixel's k×k output block independently: out[o, k·i+a, k·j+b] =
        # bias[o] + Σc in[c, i, j] · W[o, a, b, c] (OHWI). That is a 1×1 convolution to O·k·k
        # channels ordered (o, a, b) followed by pixel_shuffle(k), which runs on every device and
        # dtype (CPU bf16 conv_transpose2d fails in torch 1.13).
        o, kh, kw, i = array.shape
        return torch.from_numpy(array.astype("float32").copy()).reshape(o * kh * kw, i, 1, 1).contiguous()

    def transpose_bias(array, taps):
        return torch.from_numpy(array.astype("float32").copy()).repeat_interleave(taps)

    def bias(array):
        return torch.from_numpy(array.astype("float32").copy())

    final_logistic = None
    output_index = graph_outputs[0]
    steps = []
    for op in ops:
        kind, ins, outs, opt = op["kind"], op["inputs"], op["outputs"], op["options"]
        net.counts[kind] = net.counts.get(kind, 0) + 1
        if kind == "DEQUANTIZE":
            if ins[0] not in constant:
                raise SystemExit("DEQUANTIZE of a non-constant tensor is not supported")
            constant[outs[0]] = constant[ins[0]].astype("float32")
            continue
        if kind == "LOGISTIC" and outs[0] == output_index:
            final_logistic = ins[0]  # dropped: the contract wants logits
            continue
        in_shape = tensors[ins[0]]["shape"]
        out_shape = tensors[outs[0]]["shape"]
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w_shape = tensors[ins[1]]["shape"]
            kh, kw = w_shape[1], w_shape[2]
            if kind == "CONV_2D":
                w = buffer_for(ins[1], conv_weight)
                groups = 1
            else:
                w = buffer_for(ins[1], depthwise_weight)
                groups = in_shape[3]
            b = buffer_for(ins[2], bias) if len(ins) > 2 and ins[2] >= 0 else None
            pads = [0, 0, 0, 0]
            if opt["padding"] == PADDING_SAME:
                top, bottom = same_padding(in_shape[1], kh, opt["stride"][0], opt["dilation"][0])
                left, right = same_padding(in_shape[2], kw, opt["stride"][1], opt["dilation"][1])
                pads = [left, right, top, bottom]
            if opt["act"] not in (ACT_NONE, ACT_RELU, ACT_RELU6):
                raise SystemExit(f"{kind}: fused activation {opt['act']} not supported")
            steps.append(("conv", ins[:1], outs[0], dict(w=w, b=b, stride=opt["stride"], dilation=opt["dilation"],
                                                         groups=groups, pads=pads, act=opt["act"])))
        elif kind == "Convolution2DTransposeBias":
            w_shape = tensors[ins[1]]["shape"]
            kh, kw = w_shape[1], w_shape[2]
            sh, sw = opt["stride"]
            # SAME: output = input × stride; with kernel == stride there is nothing to crop.
            expected = [in_shape[1] * sh, in_shape[2] * sw]
            if out_shape[1:3] != expected or (kh, kw) != (sh, sw):
                raise SystemExit(f"Convolution2DTransposeBias: kernel {kh}x{kw}, stride {sh}x{sw}, "
                                 f"{in_shape} → {out_shape} is not the k = stride case this converter handles")
            if sh != sw:
                raise SystemExit(f"Convolution2DTransposeBias: stride {sh}x{sw} is not square")
            w = buffer_for(ins[1], transpose_weight)
            b = buffer_for(ins[2], lambda array: transpose_bias(array, sh * sw))
            steps.append(("deconv", ins[:1], outs[0], dict(w=w, b=b, factor=sh)))
        elif kind in ("RELU", "HARD_SWISH", "LOGISTIC"):
            steps.append((kind.lower(), ins[:1], outs[0], {}))
        elif kind in ("ADD", "MUL"):
            operands = []
            for i in ins:
                operands.append(("const", buffer_for(i, nchw_const)) if i in constant else ("var", i))
            if opt["act"] not in (ACT_NONE, ACT_RELU, ACT_RELU6):
                raise SystemExit(f"{kind}: fused activation {opt['act']} not supported")
            steps.append((kind.lower(), [i for i in ins if i not in constant], outs[0],
                          dict(operands=operands, act=opt["act"])))
        elif kind == "AVERAGE_POOL_2D":
            if tuple(opt["filter"]) != (in_shape[1], in_shape[2]) or out_shape[1:3] != [1, 1]:
                raise SystemExit(f"AVERAGE_POOL_2D: only global pooling is handled, got filter {opt['filter']} "
                                 f"on {in_shape}")
            steps.append(("gap", ins[:1], outs[0], {}))
        elif kind == "RESIZE_BILINEAR":
            size = constant[ins[1]].tolist()
            if opt["align_corners"] or not opt["half_pixel"]:
                raise SystemExit("RESIZE_BILINEAR: only half_pixel_centers=True, align_corners=False is handled")
            steps.append(("resize", ins[:1], outs[0], dict(size=(int(size[0]), int(size[1])))))
        else:
            raise SystemExit(f"unsupported op {kind}")
    if final_logistic is None:
        raise SystemExit("the graph does not end with LOGISTIC; cannot take its logits")

    input_index = graph_inputs[0]

    class Network(torch.nn.Module):
        """The TFLite graph, op by op, in NCHW. Input RGB in [0,1] [B,3,256,256] → logits [B,1,256,256]."""

        def __init__(self, source):
            super().__init__()
            for name, value in source.named_buffers():
                self.register_buffer(name, value)

        def forward(self, x):
            values = {input_index: x}
            for kind, ins, out, a in steps:
                v = values[ins[0]] if ins else None
                if kind == "conv":
                    if any(a["pads"]):
                        v = F.pad(v, a["pads"])
                    v = F.conv2d(v, getattr(self, a["w"]), getattr(self, a["b"]) if a["b"] else None,
                                 stride=a["stride"], dilation=a["dilation"], groups=a["groups"])
                    v = activation(v, a["act"])
                elif kind == "deconv":
                    v = F.pixel_shuffle(F.conv2d(v, getattr(self, a["w"]), getattr(self, a["b"])), a["factor"])
                elif kind == "relu":
                    v = F.relu(v)
                elif kind == "hard_swish":
                    v = v * F.relu6(v + 3.0) / 6.0
                elif kind == "logistic":
                    v = torch.sigmoid(v)
                elif kind in ("add", "mul"):
                    terms = [getattr(self, name) if tag == "const" else values[name] for tag, name in a["operands"]]
                    v = terms[0] + terms[1] if kind == "add" else terms[0] * terms[1]
                    v = activation(v, a["act"])
                elif kind == "gap":
                    v = v.mean(dim=(2, 3), keepdim=True)
                elif kind == "resize":
                    v = F.interpolate(v, size=a["size"], mode="bilinear", align_corners=False)
                values[out] = v
            return values[final_logistic]

    def activation(v, act):
        if act == ACT_RELU:
            return F.relu(v)
        if act == ACT_RELU6:
            return F.relu6(v)
        return v

    network = Network(net)
    network.eval()
    return network, net.counts


# ---------------------------------------------------------------------------------------------
# The engine contract wrapper (TorchScript-scripted)


def make_wrapper_class():
    import torch
    import torch.nn.functional as F

    def corner_mapped_taps(src: int, dst: int, device: torch.device, dtype: torch.dtype):
        """MediaPipe's ImageToTensorCalculator (OpenCV path) maps the image's outer corners onto the
        tensor's (src = dst_index × src/dst) and samples bilinearly with a zero border; OpenCV's
        warp quantises the fraction to 1/32. Returns indices and weights of the two taps."""
        position = torch.arange(dst, device=device, dtype=torch.float64) * (float(src) / float(dst))
        position = torch.round(position * 32.0) / 32.0
        first = torch.floor(position)
        fraction = position - first
        first = first.to(torch.long)
        second = first + 1
        w0 = (1.0 - fraction) * (first <= src - 1).to(torch.float64)
        w1 = fraction * (second <= src - 1).to(torch.float64)
        return (first.clamp(max=src - 1), second.clamp(max=src - 1), w0.to(dtype), w1.to(dtype))

    class SelfieSegmentation(torch.nn.Module):
        """MediaPipe selfie segmentation (general model, 256×256) under Backdrop's TorchScript
        contract: ImageNet-normalised RGB [B,3,H,W] → person logits [B,1,H,W]."""

        def __init__(self, network):
            super().__init__()
            self.network = network
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            height = x.size(2)
            width = x.size(3)
            if height != 256 or width != 256:
                r0, r1, wr0, wr1 = corner_mapped_taps(height, 256, x.device, x.dtype)
                c0, c1, wc0, wc1 = corner_mapped_taps(width, 256, x.device, x.dtype)
                # Pick the rows first, so that the normalisation is undone on 2×256 rows only.
                upper = x.index_select(2, r0) * self.std + self.mean
                lower = x.index_select(2, r1) * self.std + self.mean
                rows = upper * wr0.view(1, 1, -1, 1) + lower * wr1.view(1, 1, -1, 1)
                rgb = rows.index_select(3, c0) * wc0.view(1, 1, 1, -1) + rows.index_select(3, c1) * wc1.view(1, 1, 1, -1)
                # MediaPipe warps the 8-bit image, so its tensor holds whole 8-bit steps.
                rgb = torch.round(rgb.clamp(0.0, 1.0) * 255.0) / 255.0
            else:
                rgb = x * self.std + self.mean
            logits = self.network(rgb)
            if height != 256 or width != 256:
                # MediaPipe resizes the probabilities (bilinear, half-pixel), and bilinear resizing of
                # logits would move the 0.5 contour, as logits are far from symmetric (−800…+360).
                # So: logits whose sigmoid is the resized probability where that is not saturated,
                # and the resized logits themselves where it is (so they never become ±inf).
                # In fp32 whatever the module's dtype.
                source = logits.float()
                resized = F.interpolate(source, size=[height, width], mode="bilinear", align_corners=False)
                p = F.interpolate(torch.sigmoid(source), size=[height, width], mode="bilinear", align_corners=False)
                inside = (p > 1e-6) & (p < 1.0 - 1e-6)
                p = p.clamp(1e-6, 1.0 - 1e-6)
                logits = torch.where(inside, torch.log(p) - torch.log1p(-p), resized).to(x.dtype)
            return logits

    return SelfieSegmentation


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("output", nargs="?", default=os.path.join(here, "selfie.pt"),
                        help="where to write the TorchScript model (default: models/selfie/selfie.pt)")
    parser.add_argument("--cache-dir", default=default_cache_dir(),
                        help="folder for the wheel, the extracted .tflite and the tflite parser package "
                             "(default: $BACKDROP_CACHE_DIR or $XDG_CACHE_HOME/backdrop/selfie)")
    parser.add_argument("--tflite", help="use this selfie_segmentation.tflite instead of fetching the wheel "
                                         "(still checked by size and sha256)")
    args = parser.parse_args()

    started = time.monotonic()
    import torch
    torch.set_num_threads(min(2, os.cpu_count() or 1))

    data = fetch_tflite(args.cache_dir, args.tflite)
    tflite = import_tflite(args.cache_dir)
    tensors, ops, graph_inputs, graph_outputs = parse_graph(tflite, data)
    in_shape = tensors[graph_inputs[0]]["shape"]
    out_shape = tensors[graph_outputs[0]]["shape"]
    if in_shape != [1, NET_SIZE, NET_SIZE, 3] or out_shape != [1, NET_SIZE, NET_SIZE, 1]:
        raise SystemExit(f"unexpected model input {in_shape} / output {out_shape}")
    network, counts = build_network(tensors, ops, graph_inputs, graph_outputs)
    parameters = sum(int(t["value"].size) for t in tensors
                     if t["value"] is not None and t["type"] != tflite.TensorType.INT32)
    log(f"graph: {len(ops)} ops ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}), "
        f"{parameters} constants")

    with torch.no_grad():
        example = torch.rand(1, 3, NET_SIZE, NET_SIZE)
        traced = torch.jit.trace(network, example, check_trace=False)
        wrapper = make_wrapper_class()(traced)
        wrapper.eval()
        scripted = torch.jit.script(wrapper)

        # Sanity checks: eager against TorchScript, batch and size independence.
        eager = make_wrapper_class()(network).eval()
        for shape in [(1, 3, 256, 256), (3, 3, 256, 256), (2, 3, 480, 640), (1, 3, 144, 200)]:
            x = (torch.rand(*shape) - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / \
                torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
            a, b = eager(x), scripted(x)
            if tuple(b.shape) != (shape[0], 1, shape[2], shape[3]):
                raise SystemExit(f"TorchScript output {tuple(b.shape)} for input {shape}")
            diff = (a - b).abs().max().item()
            if diff > 1e-3 * max(1.0, a.abs().max().item()):
                raise SystemExit(f"TorchScript differs from eager by {diff} for input {shape}")
        batch = scripted(torch.cat([x, x.flip(0)]))
        if (batch[: x.size(0)] - scripted(x)).abs().max().item() > 1e-3:
            raise SystemExit("batch elements are not independent")

    output = os.path.abspath(args.output)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    scripted.save(output + ".tmp")
    os.replace(output + ".tmp", output)
    check = torch.jit.load(output)
    with torch.no_grad():
        logits = check(torch.zeros(1, 3, NET_SIZE, NET_SIZE))
    log(f"wrote {output} ({os.path.getsize(output)} bytes): ImageNet-normalised RGB [B,3,H,W] → "
        f"logits [B,1,H,W]; reloaded, probe logits range {logits.min().item():.1f}…{logits.max().item():.1f}")
    log(f"done in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
