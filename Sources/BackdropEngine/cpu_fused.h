// Whole-frame post-processing steps fused into one pass for the CPU. ATen runs each step of these
// as its own pass over the frame with a frame-sized temporary (index tensors of 8 bytes a pixel
// for a gather), which at 1080p cost many times the selfie model's own time. On CUDA the ATen
// versions stay: there each step is a cheap kernel launch.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace bd::cpu {

// Where each output index of one axis reads its two neighbours, as ATen's upsample_bilinear2d
// with align_corners=false computes them (source = (i + 0.5)·in/out − 0.5, at least 0).
struct BilinearAxis {
  std::vector<int64_t> first, second;
  std::vector<float> first_weight, second_weight;
};
BilinearAxis bilinear_axis(int64_t in, int64_t out);

// TemporalStage::finish for one frame, in one pass: with the displacement [2,h,w] and history
// weight [1,h,w] brought to the frame's size H×W (bilinear; the displacement scaled to its
// pixels), out = prob + weight · exp(−|d|²/0.25) · (warp(history, d) − prob), where warp samples
// history bilinearly at (x + dx, y + dy), edges clamped. prob and history are [1,H,W] float on
// the CPU.
at::Tensor still_history_blend(const at::Tensor& prob, const at::Tensor& history, const at::Tensor& displacement,
                               const at::Tensor& weight);

// The last step of guided_upsample for frames on the CPU, in one pass: with the coefficients
// [n,2,h',w'] (a, b), the probability [n,1,h,w], the uncertain band [n,1,h',w'] and `settled`
// (optional, [n,1,h,w]) brought to the guide's size H×W (bilinear), float, contiguous or not, guided = clamp(a·(guide − 0.5)
// + b + 0.5) and out = clamp(plain + band·(1 − settled)·(guided − plain)), clamps to 0..1.
at::Tensor guided_blend(const at::Tensor& coefficients, const at::Tensor& probability, const at::Tensor& band,
                        const at::Tensor& settled, const at::Tensor& guide);

// estimate_foreground's last step on the CPU, in one pass: where 0.02 < alpha < 0.98, each channel
// becomes clamp(F + alpha·(image − alpha·F − (1 − alpha)·B), lowest, highest) with F and B the
// local means [n,2c,h,w] (foreground channels, then background) sampled bilinearly at the pixel;
// elsewhere the image is kept. image [n,c,H,W] and alpha [n,1,H,W] float.
at::Tensor foreground_final(const at::Tensor& image, const at::Tensor& alpha, const at::Tensor& means, double lowest,
                            double highest);

// yuv_to_rgb on the CPU in one pass, with the same float operations in the same order (so the
// same bits): y [n,1,H,W] and uv [n,2,ceil(H/2),ceil(W/2)] code values as float, chroma taken
// from its 2×2 block. Returns [n,3,H,W] in 0..1.
struct YuvToRgbConstants {
  float y_offset, y_factor, c_factor;  // luma = (y − y_offset)·y_factor; chroma = (c − 128)·c_factor
  float red_pr, blue_pb;               // red = luma + pr·red_pr; blue = luma + pb·blue_pb
  float kr, kb, green_factor;          // green = (luma − red·kr − blue·kb)·green_factor
};
at::Tensor yuv_to_rgb(const at::Tensor& y, const at::Tensor& uv, const YuvToRgbConstants& k);

// box_mean on the CPU: the mean over the (2r+1)² window of each pixel of x [n,c,h,w] float, the
// window cut at the edges (divided by the pixels it holds), as sliding sums in double, one pass
// per direction (ATen's version: a running cumsum, padding and slices, several passes each).
at::Tensor box_mean(const at::Tensor& x, int64_t radius);

// avg_pool2d with a factor×factor kernel and stride, ceil_mode and count_include_pad=false on
// the CPU: each output the mean of its block, the blocks at the edges cut to the pixels they hold.
// x [n,c,H,W] float; returns [n,c,ceil(H/factor),ceil(W/factor)].
at::Tensor block_mean(const at::Tensor& x, int64_t factor);

}  // namespace bd::cpu
