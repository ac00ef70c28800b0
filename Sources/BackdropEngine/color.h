// Colour conversion between RGB and Y'CbCr with torch ops, following the stream's colorimetry.
#pragma once

#include <ATen/ATen.h>

#include "backdrop_engine.h"

namespace bd {

struct YuvCoding {
  bd_matrix matrix = BD_MATRIX_BT601;
  bool full_range = false;
};

// Y'CbCr planes in code values (0..255 as float): y [N,1,H,W], uv [N,2,ceil(H/2),ceil(W/2)].
struct YuvPlanes {
  at::Tensor y;
  at::Tensor uv;
};

// rgb: [N,3,H,W] float in 0..1. Chroma is averaged over 2×2 blocks (I420/NV12 siting).
YuvPlanes rgb_to_yuv(const at::Tensor& rgb, const YuvCoding& coding);

// Returns [N,3,H,W] float RGB in 0..1 (clamped); chroma is upsampled by pixel replication.
at::Tensor yuv_to_rgb(const YuvPlanes& yuv, const YuvCoding& coding);

// 2×2 average with partial blocks at odd edges: full-resolution plane → chroma resolution.
at::Tensor downsample_chroma(const at::Tensor& plane);

// Chroma resolution → full resolution (pixel replication), cropped to height × width.
at::Tensor upsample_chroma(const at::Tensor& plane, int64_t height, int64_t width);

}  // namespace bd
