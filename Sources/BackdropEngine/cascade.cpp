#include "cascade.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "refine.h"

namespace bd {
namespace {

// Share of a full pass at the cascade resolution the tiles may cover: the tiles with the most
// unseen detail are kept when more are uncertain. Tiles overlap and a large batch costs a little
// more per image than a whole-frame pass, so 0.3 keeps the cascade under half a full pass.
constexpr double kTileBudget = 0.3;

// Tile origins along one axis: the first at 0, the last flush with the end, neighbours
// overlapping by at least an eighth of a tile so that the feathered seams have room.
std::vector<int64_t> tile_origins(int64_t length, int64_t side) {
  if (side >= length) return {0};
  const int64_t stride = side - std::max<int64_t>(1, side / 8);
  const int64_t count = (length - side + stride - 1) / stride + 1;
  std::vector<int64_t> origins;
  for (int64_t k = 0; k < count; ++k) origins.push_back(static_cast<int64_t>(std::llround(double(k) * double(length - side) / double(count - 1))));
  return origins;
}

// Feathering weights along one axis of a pasted tile: a linear ramp over `ramp` cells at an edge
// that lies inside the frame, none at an edge on the frame's border.
at::Tensor ramp(int64_t cells, int64_t ramp_cells, bool at_start, bool at_end, const at::TensorOptions& options) {
  auto position = at::arange(cells, options.dtype(at::kFloat)) + 0.5;
  auto weight = at::ones({cells}, options.dtype(at::kFloat));
  const double width = static_cast<double>(std::max<int64_t>(1, ramp_cells));
  if (!at_start) weight = at::minimum(weight, position / width);
  if (!at_end) weight = at::minimum(weight, (static_cast<double>(cells) - position) / width);
  return weight;
}

struct Tile {
  int64_t frame, x, y;
  double uncertain;
};

}  // namespace

std::pair<int64_t, int64_t> cascade_grid(int64_t stream_height, int64_t stream_width, int64_t base_height,
                                         int64_t base_width, const CascadeSettings& settings) {
  const int64_t side = std::max<int64_t>(1, settings.tile_side);
  const int64_t width = std::min<int64_t>(stream_width, std::llround(double(stream_width) * settings.inference_width / side));
  const int64_t height =
      std::min<int64_t>(stream_height, std::llround(double(stream_height) * settings.inference_height / side));
  if (double(width) < 1.5 * base_width && double(height) < 1.5 * base_height) return {0, 0};
  return {std::max(height, base_height), std::max(width, base_width)};
}

CascadeResult cascade_refine(const at::Tensor& probability, const at::Tensor& rgb01, const CascadeSettings& settings,
                             const TileInference& infer) {
  CascadeResult result;
  result.probability = probability;
  const int64_t n = rgb01.size(0), height = rgb01.size(2), width = rgb01.size(3);
  const int64_t h = probability.size(2), w = probability.size(3);
  const auto grid = cascade_grid(height, width, h, w, settings);
  if (grid.first == 0) return result;
  const int64_t grid_h = grid.first, grid_w = grid.second;
  const int64_t side_x = std::min<int64_t>(settings.tile_side, width), side_y = std::min<int64_t>(settings.tile_side, height);
  const auto xs = tile_origins(width, side_x), ys = tile_origins(height, side_y);
  result.grid_tiles = static_cast<int64_t>(xs.size() * ys.size());
  const double full_pass_tiles = double(grid_h) * double(grid_w) /
                                 (double(settings.inference_width) * double(settings.inference_height));
  const size_t budget = static_cast<size_t>(std::max(1.0, std::floor(kTileBudget * full_pass_tiles)));

  // Which tiles deserve a second look: inside the trimap's unknown region, the picture detail that
  // the whole-frame pass could not see (the grey level's variance within each cell of the small
  // grid: a thin stroke or a sharp edge, not a smooth background), summed per tile through a
  // summed-area table.
  auto grey = rgb01.narrow(1, 0, 1) * 0.299 + rgb01.narrow(1, 1, 1) * 0.587 + rgb01.narrow(1, 2, 1) * 0.114;
  auto cell_mean = at::adaptive_avg_pool2d(grey, {h, w});
  auto cell_variance = (at::adaptive_avg_pool2d(grey * grey, {h, w}) - cell_mean * cell_mean).clamp_min_(0.0);
  auto band = uncertain_band(probability, 2, 0.02);
  auto score = (band * cell_variance).to(at::kCPU).to(at::kDouble).squeeze(1);  // [n,h,w]
  auto table = at::zeros({n, h + 1, w + 1}, score.options());
  table.narrow(1, 1, h).narrow(2, 1, w).copy_(score.cumsum(1).cumsum(2));
  auto sums = table.accessor<double, 3>();
  // A tile whose detail is below this (a variance of 1e-4 over a single small cell) is left alone.
  constexpr double kLeastDetail = 1e-4;
  std::vector<Tile> chosen;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<Tile> candidates;
    for (int64_t y : ys) {
      for (int64_t x : xs) {
        const int64_t x0 = x * w / width, x1 = std::min<int64_t>(w, ((x + side_x) * w + width - 1) / width);
        const int64_t y0 = y * h / height, y1 = std::min<int64_t>(h, ((y + side_y) * h + height - 1) / height);
        const double count = sums[i][y1][x1] - sums[i][y0][x1] - sums[i][y1][x0] + sums[i][y0][x0];
        if (count > kLeastDetail) candidates.push_back({i, x, y, count});
      }
    }
    // Most unseen detail first; ties in grid order, so the choice never depends on the batch.
    std::sort(candidates.begin(), candidates.end(), [](const Tile& a, const Tile& b) {
      if (a.uncertain != b.uncertain) return a.uncertain > b.uncertain;
      return a.y != b.y ? a.y < b.y : a.x < b.x;
    });
    if (candidates.size() > budget) candidates.resize(budget);
    chosen.insert(chosen.end(), candidates.begin(), candidates.end());
  }
  auto base = bilinear_resize(probability, grid_h, grid_w);
  if (chosen.empty()) {
    result.probability = base;
    return result;
  }

  // One forward for every tile of every frame of the batch.
  std::vector<at::Tensor> crops;
  for (const auto& tile : chosen) crops.push_back(rgb01[tile.frame].narrow(1, tile.y, side_y).narrow(2, tile.x, side_x));
  auto tiles = at::stack(crops);
  const bool shrink = side_x > settings.inference_width || side_y > settings.inference_height;
  tiles = shrink ? at::_upsample_bilinear2d_aa(tiles, {settings.inference_height, settings.inference_width}, false)
                 : at::upsample_bilinear2d(tiles, {settings.inference_height, settings.inference_width}, false);
  auto tile_probability = infer(tiles).to(at::kFloat);
  result.tiles = static_cast<int64_t>(chosen.size());

  // Paste: feathered weighted sums; where tiles cover less than full weight the base pass fills in.
  auto sum = at::zeros({n, 1, grid_h, grid_w}, base.options());
  auto weight = at::zeros_like(sum);
  for (size_t t = 0; t < chosen.size(); ++t) {
    const auto& tile = chosen[t];
    const int64_t gx0 = std::llround(double(tile.x) * grid_w / width), gx1 = std::llround(double(tile.x + side_x) * grid_w / width);
    const int64_t gy0 = std::llround(double(tile.y) * grid_h / height), gy1 = std::llround(double(tile.y + side_y) * grid_h / height);
    const int64_t cells_x = gx1 - gx0, cells_y = gy1 - gy0;
    if (cells_x <= 0 || cells_y <= 0) continue;
    auto piece = tile_probability.narrow(0, static_cast<int64_t>(t), 1);
    const bool piece_shrinks = cells_x < piece.size(3) || cells_y < piece.size(2);
    piece = piece_shrinks ? at::_upsample_bilinear2d_aa(piece, {cells_y, cells_x}, false)
                          : bilinear_resize(piece, cells_y, cells_x);
    auto wx = ramp(cells_x, cells_x / 8, tile.x == 0, tile.x + side_x >= width, base.options());
    auto wy = ramp(cells_y, cells_y / 8, tile.y == 0, tile.y + side_y >= height, base.options());
    auto feather = wy.view({1, 1, cells_y, 1}) * wx.view({1, 1, 1, cells_x});
    sum.narrow(0, tile.frame, 1).narrow(2, gy0, cells_y).narrow(3, gx0, cells_x).add_(piece * feather);
    weight.narrow(0, tile.frame, 1).narrow(2, gy0, cells_y).narrow(3, gx0, cells_x).add_(feather);
  }
  auto base_weight = (1.0 - weight).clamp_(0.0, 1.0);
  result.coverage = 1.0 - base_weight;
  result.probability = ((sum + base_weight * base) / (weight + base_weight)).clamp_(0.0, 1.0);
  return result;
}

}  // namespace bd
