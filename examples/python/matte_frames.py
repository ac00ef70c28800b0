#!/usr/bin/env python3
"""Background removal from Python: birefnetmatte through PyGObject, RGBA frames as NumPy arrays.

    python3 examples/python/matte_frames.py INPUT MODEL [--frames N] [--size WxH] [--save DIR]

INPUT is any file GStreamer decodes; MODEL a BiRefNet .safetensors or a TorchScript .pt (the
offline selfie model is /usr/share/backdrop/models/selfie.pt once the Debian package is
installed). Each frame arrives as a (height, width, 4) uint8 array whose last channel is the
alpha; the script prints one line per frame and, with --save, writes frame00000.npy, ...

Use it as a module too:

    from matte_frames import matte_frames
    for timestamp_ns, rgba in matte_frames("talk.mp4", "selfie.pt"):
        ...

Debian packages: python3-gi, python3-numpy, gir1.2-gstreamer-1.0, gir1.2-gst-plugins-base-1.0.
GStreamer must find the backdrop plugin: installed, or GST_PLUGIN_PATH naming a folder that holds
only libgstbackdrop.so (see README.md).
"""
import argparse
import os
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")  # appsink's pull methods
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstApp, GstVideo  # noqa: E402,F401

import numpy as np  # noqa: E402


class PipelineError(RuntimeError):
    """An ERROR message from the pipeline (bad model file, undecodable input, ...)."""


def matte_frames(path, model, width=None, height=None, properties=None, timeout_s=120):
    """Yields (timestamp in ns, RGBA array) for every frame of `path`, background removed.

    `properties` are more birefnetmatte properties by name (e.g. {"matte-mode": "soft"}).
    """
    Gst.init(None)
    pipeline = Gst.parse_launch(
        "filesrc name=src ! decodebin ! videoconvert ! birefnetmatte name=matte "
        "! video/x-raw,format=RGBA ! appsink name=sink sync=false max-buffers=8"
    )
    pipeline.get_by_name("src").set_property("location", path)
    matte = pipeline.get_by_name("matte")
    matte.set_property("model-file", model)
    if width and height:
        matte.set_property("inference-width", width)
        matte.set_property("inference-height", height)
    for name, value in (properties or {}).items():
        Gst.util_set_object_arg(matte, name, str(value))
    sink = pipeline.get_by_name("sink")
    bus = pipeline.get_bus()

    def raise_if_error():
        message = bus.pop_filtered(Gst.MessageType.ERROR)
        if message is not None:
            error, debug = message.parse_error()
            raise PipelineError("%s: %s" % (message.src.get_name(), error.message))

    pipeline.set_state(Gst.State.PLAYING)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            # Short waits: an error stops the frames without an EOS, so look at the bus between them.
            sample = sink.try_pull_sample(Gst.SECOND // 10)
            if sample is None:
                raise_if_error()
                if sink.is_eos():
                    return
                if time.monotonic() > deadline:
                    raise PipelineError("no frame within %d s" % timeout_s)
                continue
            deadline = time.monotonic() + timeout_s
            yield sample.get_buffer().pts, rgba_array(sample)
    finally:
        pipeline.set_state(Gst.State.NULL)


def rgba_array(sample):
    """Copies an RGBA sample into a (height, width, 4) array, honouring the row stride."""
    info = GstVideo.VideoInfo.new_from_caps(sample.get_caps())
    buffer = sample.get_buffer()
    ok, mapped = buffer.map(Gst.MapFlags.READ)
    if not ok:
        raise PipelineError("cannot map a frame")
    try:
        rows = np.ndarray(
            (info.height, info.width, 4), dtype=np.uint8, buffer=mapped.data,
            offset=info.offset[0], strides=(info.stride[0], 4, 1))
        return rows.copy()  # the buffer goes back to GStreamer when unmapped
    finally:
        buffer.unmap(mapped)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input")
    parser.add_argument("model")
    parser.add_argument("--frames", type=int, default=0, help="stop after N frames (0: all)")
    parser.add_argument("--size", help="inference size WxH (default: the model's)")
    parser.add_argument("--save", help="write each frame as DIR/frameNNNNN.npy")
    args = parser.parse_args()
    width = height = None
    if args.size:
        width, height = (int(v) for v in args.size.lower().split("x"))
    if args.save:
        os.makedirs(args.save, exist_ok=True)
    try:
        for index, (pts, rgba) in enumerate(matte_frames(args.input, args.model, width, height)):
            alpha = rgba[..., 3]
            print("frame %d at %.3f s: %dx%d, %.1f%% foreground"
                  % (index, pts / 1e9, rgba.shape[1], rgba.shape[0], 100.0 * np.count_nonzero(alpha >= 128) / alpha.size))
            if args.save:
                np.save(os.path.join(args.save, "frame%05d.npy" % index), rgba)
            if args.frames and index + 1 >= args.frames:
                break
    except PipelineError as error:
        sys.exit("matte_frames: %s" % error)


if __name__ == "__main__":
    main()
