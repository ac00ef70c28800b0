// The resolution cascade (issue 9): after the whole frame was inferred at the inference size,
// square tiles of the frame that hold the uncertain band are inferred again, each at the inference
// size (so at a higher resolution than the whole-frame pass), in one extra batched forward, and
// pasted into a finer probability grid with feathered seams.
#pragma once

#include <ATen/ATen.h>

#include <functional>

namespace bd {

struct CascadeSettings {
  int64_t tile_side;  // tile side in stream pixels
  int64_t inference_width, inference_height;
};

// rgb01 [n,3,H,W] → probability [t,1,inference_height,inference_width] for t tiles; the model's
// whole pipeline (normalisation, precision, forward, sigmoid).
using TileInference = std::function<at::Tensor(const at::Tensor& rgb01_tiles)>;

struct CascadeResult {
  at::Tensor probability;  // [n,1,h',w'] on the cascade grid, or the input unchanged
  at::Tensor coverage;     // [n,1,h',w'] in 0..1: how much of each cell came from tiles; undefined without tiles
  int64_t tiles = 0;       // tiles inferred for the whole batch
  int64_t grid_tiles = 0;  // tiles a full pass at the cascade resolution would need, per frame
};

// The grid the cascade writes: the stream at the tiles' resolution (inference size per tile side),
// never finer than the stream itself. Returns {0,0} when that is not finer than the base pass, in
// which case the cascade has nothing to add.
std::pair<int64_t, int64_t> cascade_grid(int64_t stream_height, int64_t stream_width, int64_t base_height,
                                         int64_t base_width, const CascadeSettings& settings);

// probability [n,1,h,w] from the whole-frame pass; rgb01 [n,3,H,W] the frames.
CascadeResult cascade_refine(const at::Tensor& probability, const at::Tensor& rgb01, const CascadeSettings& settings,
                             const TileInference& infer);

}  // namespace bd
