// Spatial refinement of the matte after the model (issue 9): guided upsampling of the
// inference-size probability to the stream size, the uncertain band it is restricted to, and
// blur-fusion foreground colour estimation. Torch ops only, on whatever device the inputs are.
#pragma once

#include <ATen/ATen.h>

namespace bd {

// Mean over a (2r+1)² window clipped at the borders, for [n,c,h,w] float. Cost does not grow
// with the radius (running sums), so wide windows are as cheap as narrow ones. `precise` sums in
// double (for variances); otherwise in the input's type.
at::Tensor box_mean(const at::Tensor& x, int64_t radius, bool precise);

// The trimap's unknown region of a probability map [n,1,h,w]: pixels within `radius` of the 0.5
// boundary (dilation minus erosion of the binary matte) plus every pixel whose probability lies
// between `margin` and 1 − `margin` (0.5: none). 1.0 in the band, 0.0 elsewhere.
at::Tensor uncertain_band(const at::Tensor& probability, int64_t radius, double margin);

// [n,1,h,w] → [n,1,height,width], bilinear (half-pixel centres), unchanged when the sizes match.
at::Tensor bilinear_resize(const at::Tensor& probability, int64_t height, int64_t width);

// Fast guided filter (He & Sun 2015): the linear coefficients that map the guide to the
// probability are fitted on the probability's own grid, against the guide shrunk to that grid,
// then upsampled and applied to the full-resolution guide. The result replaces bilinear
// upsampling only inside the uncertain band, so flat regions stay exactly as the model said.
// probability [n,1,h,w] in 0..1; guide [n,1,H,W] grey in 0..1. `settled` (optional, [n,1,h,w] in
// 0..1) marks cells that already hold full-detail values (cascade tiles): the filter leaves them
// as they are. Returns [n,1,H,W] in 0..1.
at::Tensor guided_upsample(const at::Tensor& probability, const at::Tensor& guide, const at::Tensor& settled);

// Blur-fusion foreground estimation (after Forte & Pitié 2020): the colour the subject itself has
// in semi-transparent pixels, so that a composite does not carry the old background through.
// image [n,c,H,W] in any affine colour coding (RGB 0..255, Y'CbCr code values); alpha [n,1,H,W]
// in 0..1 at the same size (the soft coverage, also when the output matte is binary). Returns the
// foreground colour, clamped to [lowest, highest], where alpha is between 0.02 and 0.98, and the
// image itself where the pixel is clearly background or clearly subject.
at::Tensor estimate_foreground(const at::Tensor& image, const at::Tensor& alpha, double lowest, double highest);

}  // namespace bd
