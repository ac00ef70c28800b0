#include "temporal.h"
#include "cpu_fused.h"

#if defined(BD_WITH_OPENCV)
#include <opencv2/core.hpp>
#include <opencv2/video/tracking.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

namespace bd {
namespace {

using Clock = std::chrono::steady_clock;

// Below this probability (and above 1 minus it) a pixel is plainly background (subject).
constexpr double kSure = 0.02;

double elapsed_ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

// Bilinear sampling of src [C,h,w] at (x + flow_x, y + flow_y), edges clamped. Written with
// gathers rather than grid_sample so that a zero (or whole-pixel) flow returns src exactly: a
// static scene must reproduce the per-frame matte bit for bit.
at::Tensor warp(const at::Tensor& src, const at::Tensor& flow) {
  const int64_t channels = src.size(0), h = src.size(1), w = src.size(2);
  auto options = flow.options();
  auto ys = at::arange(h, options).view({h, 1}).expand({h, w});
  auto xs = at::arange(w, options).view({1, w}).expand({h, w});
  auto x = (xs + flow[0]).clamp(0, static_cast<double>(w - 1));
  auto y = (ys + flow[1]).clamp(0, static_cast<double>(h - 1));
  auto x0 = x.floor(), y0 = y.floor();
  auto fx = (x - x0).unsqueeze(0), fy = (y - y0).unsqueeze(0);
  auto x0i = x0.to(at::kLong), y0i = y0.to(at::kLong);
  auto x1i = (x0i + 1).clamp_max(w - 1), y1i = (y0i + 1).clamp_max(h - 1);
  auto flat = src.reshape({channels, h * w});
  auto at_ = [&](const at::Tensor& yi, const at::Tensor& xi) {
    return flat.index_select(1, (yi * w + xi).reshape({-1})).view({channels, h, w});
  };
  auto top = at_(y0i, x0i) * (1 - fx) + at_(y0i, x1i) * fx;
  auto bottom = at_(y1i, x0i) * (1 - fx) + at_(y1i, x1i) * fx;
  return top * (1 - fy) + bottom * fy;
}

// With guided edges, where history may be kept: 1 where the picture stands still (displacement
// well under a pixel), falling to 0 by about half a pixel. The motion is first spread to the
// neighbours (a 5×5 maximum): at the border of a moving subject the flow of the still side is
// smeared by the subject's, and history there would drag the subject's old edge along (more
// error against the truth on fast motion).
at::Tensor still_gate(const at::Tensor& displacement) {
  auto motion = displacement.pow(2).sum(0, true).unsqueeze(0);  // [1,1,h,w]
  motion = at::max_pool2d(motion, {5, 5}, {1, 1}, {2, 2});
  return at::exp(-(motion.squeeze(0) / 0.25));
}

// Where `own` (the model's or the frame's value) and `other` (history, or the look-ahead median)
// agree that a pixel is plainly background (subject), the stabilised `blended` may not raise
// (lower) `own`: there is no shimmer to average, and blending would spread the model's faint
// noise over every frame as a steady veil (at 8 bits a steady 0.9/255 rounds to 1 on every frame,
// where the raw noise rounded to 0 as often as not). `where`: the pixels that were blended.
at::Tensor keep_plain(const at::Tensor& own, const at::Tensor& other, const at::Tensor& blended, const at::Tensor& where) {
  auto background = own.lt(kSure).logical_and(other.lt(kSure)).logical_and(where);
  auto subject = own.gt(1 - kSure).logical_and(other.gt(1 - kSure)).logical_and(where);
  auto out = at::where(background, at::minimum(own, blended), blended);
  return at::where(subject, at::maximum(own, out), out);
}

// What the scene-cut and skip-similar measures look at: the grey image averaged over 4×4 blocks
// (sensor noise and compression artefacts are not change) and scaled to mean 128 (neither is a
// gain change from auto exposure or a flickering light).
at::Tensor thumbnail(const at::Tensor& grey_u8) {
  auto grey = grey_u8.to(at::kFloat).unsqueeze(0).unsqueeze(0);
  if (grey.size(2) >= 32 && grey.size(3) >= 32) grey = at::avg_pool2d(grey, {4, 4}, {4, 4});
  const double mean = std::max(1.0, grey.mean().item<double>());
  return (grey * (128.0 / mean)).clamp_(0, 255);
}

// Half the L1 distance of 32-bin histograms: 0 for the same picture, 1 for disjoint ones.
// Histograms ignore where things are, so motion is not a cut; a new scene is.
double histogram_distance(const at::Tensor& a, const at::Tensor& b) {
  auto ha = at::histc(a, 32, 0, 255.001);
  auto hb = at::histc(b, 32, 0, 255.001);
  return 0.5 * (ha / ha.sum() - hb / hb.sum()).abs().sum().item<double>();
}

double psnr(const at::Tensor& a, const at::Tensor& b) {
  const double mse = (a - b).pow(2).mean().item<double>();
  if (mse <= 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(255.0 * 255.0 / mse);
}

}  // namespace

TemporalSettings TemporalSettings::from(const bd_composite_params& params) {
  TemporalSettings settings;
  settings.smooth = std::isfinite(params.temporal_smooth) ? std::clamp(params.temporal_smooth, 0.0f, 0.95f) : 0.0f;
  settings.infer_interval = std::max(1, params.infer_interval);
  settings.skip_similar_db = std::isfinite(params.skip_similar_db) ? std::max(0.0f, params.skip_similar_db) : 0.0f;
  settings.scene_cut_threshold =
      std::isfinite(params.scene_cut_threshold) ? std::clamp(params.scene_cut_threshold, 0.0f, 1.0f) : 0.0f;
  return settings;
}

// DIS's medium preset: the fast one halves the flow time but carries mattes worse (with
// infer-interval=3 on the 2 px/frame test clip, MAD +16 % against +2 %).
struct TemporalStage::Flow {
#if defined(BD_WITH_OPENCV)
  cv::Ptr<cv::DISOpticalFlow> dis = cv::DISOpticalFlow::create(cv::DISOpticalFlow::PRESET_MEDIUM);
#endif
};

TemporalStage::TemporalStage() : flow_(std::make_unique<Flow>()) {}
TemporalStage::~TemporalStage() = default;

void TemporalStage::reset() {
  planned_any_ = false;
  plan_previous_grey_ = at::Tensor();
  last_inferred_grey_ = at::Tensor();
  since_inference_ = 0;
  previous_grey_ = at::Tensor();
  previous_prob_ = at::Tensor();
  held_.reset();
  deferred_.clear();
  previous_full_ = at::Tensor();
}

at::Tensor TemporalStage::small_grey(const at::Tensor& rgb01) const {
  // Whole-block averages: one cheap pass, and sensor noise averages out.
  const int64_t longer = std::max(rgb01.size(2), rgb01.size(3));
  const int64_t factor = (longer + kFlowLongSide - 1) / kFlowLongSide;
  auto small = factor > 1 ? at::avg_pool2d(rgb01, {factor, factor}, {factor, factor}) : rgb01;
  auto luma = small.narrow(1, 0, 1) * 0.299 + small.narrow(1, 1, 1) * 0.587 + small.narrow(1, 2, 1) * 0.114;
  return (luma * 255.0).round_().clamp_(0, 255).to(at::kByte).squeeze(1).to(at::kCPU).contiguous();
}

std::vector<TemporalStage::Decision> TemporalStage::plan(const at::Tensor& greys, const TemporalSettings& settings) {
  std::vector<Decision> decisions(greys.size(0));
  for (int64_t i = 0; i < greys.size(0); ++i) {
    auto grey = thumbnail(greys[i]);
    auto& decision = decisions[i];
    if (!planned_any_) {
      decision.infer = true;
    } else if (settings.scene_cut_threshold > 0 &&
               histogram_distance(grey, plan_previous_grey_) > settings.scene_cut_threshold) {
      decision.infer = decision.cut = true;
    } else if (since_inference_ + 1 < settings.infer_interval) {
      decision.infer = false;
    } else {
      decision.infer = !(settings.skip_similar_db > 0 && psnr(grey, last_inferred_grey_) >= settings.skip_similar_db);
    }
    planned_any_ = true;
    plan_previous_grey_ = grey;
    if (decision.infer) {
      last_inferred_grey_ = grey;
      since_inference_ = 0;
    } else {
      ++since_inference_;
    }
  }
  return decisions;
}

at::Tensor TemporalStage::flow(const at::Tensor& from, const at::Tensor& to) {
  const int rows = static_cast<int>(from.size(0)), cols = static_cast<int>(from.size(1));
#if defined(BD_WITH_OPENCV)
  cv::Mat a(rows, cols, CV_8UC1, from.data_ptr<uint8_t>(), static_cast<size_t>(from.stride(0)));
  cv::Mat b(rows, cols, CV_8UC1, to.data_ptr<uint8_t>(), static_cast<size_t>(to.stride(0)));
  cv::Mat result;
  flow_->dis->calc(a, b, result);  // CV_32FC2: a(x) ≈ b(x + flow(x))
  auto packed = at::from_blob(result.data, {rows, cols, 2}, {static_cast<int64_t>(result.step1()), 2, 1}, at::kFloat);
  return packed.permute({2, 0, 1}).clone();
#else
  // Built without OpenCV (the CMake build says so): no motion compensation, the blend's agreement
  // and certainty gates still keep moving edges from ghosting.
  return at::zeros({2, rows, cols}, at::kFloat);
#endif
}

TemporalStage::Flows TemporalStage::flows(const at::Tensor& grey, bool forward) {
  auto started = Clock::now();
  // DIS matches brightness, so an exposure change between the two frames (auto exposure, a
  // flickering light) reads as motion and fails the forward/backward check: the darker grey is
  // brought to the brighter one's mean first.
  auto current = grey, previous = previous_grey_;
  const double current_mean = current.to(at::kFloat).mean().item<double>();
  const double previous_mean = previous.to(at::kFloat).mean().item<double>();
  auto brighten = [](const at::Tensor& image, double gain) {
    return (image.to(at::kFloat) * gain).round_().clamp_(0, 255).to(at::kByte).contiguous();
  };
  if (current_mean > 0 && previous_mean > current_mean * 1.02) current = brighten(current, previous_mean / current_mean);
  if (previous_mean > 0 && current_mean > previous_mean * 1.02) previous = brighten(previous, current_mean / previous_mean);
  Flows result;
  result.backward = flow(current, previous);  // current pixel → where it was in the previous frame
  if (forward) result.forward = flow(previous, current);
  timing_.flow_ms += elapsed_ms(started);
  return result;
}

TemporalStage::Step TemporalStage::propagate(const at::Tensor& grey, const at::Tensor& prob, bool inferred, float smooth,
                                             bool keep_history, int64_t h, int64_t w, const Flows& flows) {
  Step step;
  step.inferred = inferred;
  auto& deferred = step.deferred;
  if (!previous_prob_.defined() || (inferred && smooth <= 0 && !keep_history)) {
    step.out = prob;  // a stream's first frame, a cut, or nothing to blend: the model's own answer
  } else {
    auto started = Clock::now();
    auto device = previous_prob_.device();
    auto backward_d = flows.backward.to(device);
    const bool blend = inferred;
    const int64_t fh = grey.size(0), fw = grey.size(1);
    at::Tensor confidence;
    if (blend) {
      // Forward/backward check: following the backward flow and then the forward flow should
      // return to the start; where it does not (occlusion, a bad match) history is not trusted.
      auto round_trip = backward_d + warp(flows.forward.to(device), backward_d);
      auto error = round_trip.pow(2).sum(0, true).sqrt();
      auto tolerance = backward_d.pow(2).sum(0, true).sqrt() * 0.05 + 0.5;
      confidence = at::exp(-(error / tolerance).pow(2));  // [1,fh,fw]
    }
    at::Tensor displacement = backward_d;
    if (fh != h || fw != w) {
      auto scale = at::tensor({static_cast<float>(w) / fw, static_cast<float>(h) / fh}, backward_d.options()).view({2, 1, 1});
      displacement = at::upsample_bilinear2d(backward_d.unsqueeze(0), {h, w}, false).squeeze(0) * scale;
      if (blend) confidence = at::upsample_bilinear2d(confidence.unsqueeze(0), {h, w}, false).squeeze(0);
    }
    // The history may sit on another grid (the cascade refines some batches finer than others).
    auto history = previous_prob_;
    if (history.size(1) != h || history.size(2) != w) {
      history = at::upsample_bilinear2d(history.unsqueeze(0), {h, w}, false).squeeze(0);
    }
    auto warped = warp(history, displacement);
    if (blend && keep_history) {
      step.history = warped;
      step.confidence = confidence;
    }
    if (!blend) {
      step.out = warped;  // a skipped frame: the last matte carried along the motion
      deferred.restart = false;
      deferred.displacement = displacement;
      deferred.skipped = true;
    } else if (smooth <= 0) {
      step.out = prob;  // look-ahead alone: the history only serves step 5
    } else {
      deferred.restart = false;
      deferred.displacement = displacement;
      // Two more gates on the history weight. Agreement: a disagreement well beyond noise is real
      // change (motion the flow missed, something new), so it follows the model (0 from 0.6 on).
      // Certainty: where the model is surer than history (p nearer 0 or 1) and differs from it by
      // more than noise, the model wins; where history is the surer one, history is trusted (near
      // p = 0.5, where mattes shimmer, and on the model's outliers: a background pixel that blinks
      // to p = 0.1 against a history of 0.01 is noise, not news — gating on the model's certainty
      // alone kept those blinks and raised the error against the truth).
      auto difference = (warped - prob).abs();
      auto agreement = (1 - (difference / 0.6).pow(2)).clamp_min(0);
      auto certainty = ((prob * 2 - 1).pow(2) - (warped * 2 - 1).pow(2)).clamp_min(0) * (difference / 0.2).clamp_max(1);
      auto weight = confidence * agreement * (1 - certainty) * smooth;
      if (defer_) {
        // Guided upsampling follows: it gives moving edges this frame's exact position, which
        // history could only blur, so history is kept to what stands still (finish() adds the
        // same at the stream size).
        weight = weight * still_gate(displacement);
        deferred.weight = weight;
      }
      step.out = prob + weight * (warped - prob);
      step.out = keep_plain(prob, warped, step.out, weight.gt(0));
    }
    timing_.blend_ms += elapsed_ms(started);
  }
  previous_grey_ = grey;
  previous_prob_ = step.out;
  return step;
}

at::Tensor TemporalStage::release_held(const at::Tensor& next_prob, const Flows& flows) {
  Step held = std::move(*held_);
  held_.reset();
  at::Tensor out = held.out;
  if (held.inferred && held.history.defined() && next_prob.defined() && flows.forward.defined()) {
    auto started = Clock::now();
    auto device = out.device();
    auto forward = flows.forward.to(device), backward = flows.backward.to(device);
    // The forward/backward check seen from the held frame: forward into the next frame, then
    // backward, should return to the start.
    auto round_trip = forward + warp(backward, forward);
    auto error = round_trip.pow(2).sum(0, true).sqrt();
    auto tolerance = forward.pow(2).sum(0, true).sqrt() * 0.05 + 0.5;
    auto confidence = at::exp(-(error / tolerance).pow(2));  // [1,fh,fw]
    const int64_t h = out.size(1), w = out.size(2), fh = forward.size(1), fw = forward.size(2);
    auto displacement = forward;
    if (fh != h || fw != w) {
      auto scale = at::tensor({static_cast<float>(w) / fw, static_cast<float>(h) / fh}, forward.options()).view({2, 1, 1});
      displacement = at::upsample_bilinear2d(forward.unsqueeze(0), {h, w}, false).squeeze(0) * scale;
      confidence = at::upsample_bilinear2d(confidence.unsqueeze(0), {h, w}, false).squeeze(0);
    }
    auto next = next_prob;
    if (next.size(1) != h || next.size(2) != w) {
      next = at::upsample_bilinear2d(next.unsqueeze(0), {h, w}, false).squeeze(0);
    }
    auto ahead = warp(next, displacement);
    // Median of three: history, this frame, the next frame (both brought onto this one).
    auto median = at::max(at::min(held.history, out), at::min(at::max(held.history, out), ahead));
    auto corrected = out + held.confidence * confidence * (median - out);
    out = keep_plain(out, median, corrected, (held.confidence * confidence).gt(0));  // no veil from the median either
    timing_.blend_ms += elapsed_ms(started);
  }
  previous_prob_ = out;  // the next frame's history is the corrected output
  if (defer_) deferred_.push_back(std::move(held.deferred));
  return out;
}

at::Tensor TemporalStage::drain(const TemporalSettings& settings) {
  if (!held_) return at::Tensor();
  try {
    defer_ = settings.blend_at_stream_size;
    deferred_.clear();
    return release_held(at::Tensor(), Flows{}).unsqueeze(0);
  } catch (...) {
    reset();
    throw;
  }
}

at::Tensor TemporalStage::finish(const at::Tensor& prob) {
  if (deferred_.empty()) {
    previous_full_ = at::Tensor();  // not deferring: nothing to carry at the stream size
    return prob;
  }
  TORCH_CHECK(static_cast<int64_t>(deferred_.size()) == prob.size(0), "temporal finish: ", deferred_.size(),
              " frames decided, ", prob.size(0), " given");
  auto started = Clock::now();
  const int64_t height = prob.size(2), width = prob.size(3);
  std::vector<at::Tensor> outputs;
  for (int64_t i = 0; i < prob.size(0); ++i) {
    const auto& decided = deferred_[static_cast<size_t>(i)];
    at::Tensor out = prob[i];
    // A skipped frame (no weight) keeps its own upsampling: it is the warped matte already.
    if (!decided.restart && previous_full_.defined() && decided.weight.defined()) {
      if (prob.device().is_cpu() && previous_full_.sizes() == out.sizes()) {
        out = cpu::still_history_blend(out, previous_full_, decided.displacement, decided.weight);
      } else {
        auto displacement = decided.displacement;
        const int64_t h = displacement.size(1), w = displacement.size(2);
        if (h != height || w != width) {
          auto scale = at::tensor({static_cast<float>(width) / w, static_cast<float>(height) / h},
                                  displacement.options()).view({2, 1, 1});
          displacement = at::upsample_bilinear2d(displacement.unsqueeze(0), {height, width}, false).squeeze(0) * scale;
        }
        auto history = previous_full_;
        if (history.size(1) != height || history.size(2) != width) {
          history = at::upsample_bilinear2d(history.unsqueeze(0), {height, width}, false).squeeze(0);
        }
        auto warped = warp(history, displacement);
        auto weight = decided.weight;
        if (weight.size(1) != height || weight.size(2) != width) {
          weight = at::upsample_bilinear2d(weight.unsqueeze(0), {height, width}, false).squeeze(0);
        }
        // Only where the flow says the picture stands still (within about half a pixel): there the
        // warp is exact and the guide's noise is all that changes; moving parts keep this frame's
        // upsampling of the already stabilised matte, aligned to this frame's edges.
        auto still = at::exp(-(displacement.pow(2).sum(0, true) / 0.25));
        out = out + weight * still * (warped - out);
      }
    }
    previous_full_ = out;
    outputs.push_back(out);
  }
  deferred_.clear();
  timing_.blend_ms += elapsed_ms(started);
  return at::stack(outputs);
}

at::Tensor TemporalStage::run(const at::Tensor& rgb01, const TemporalSettings& settings,
                              const std::function<at::Tensor(const at::Tensor& index)>& infer,
                              TemporalCounts& counts) {
  try {
    defer_ = settings.blend_at_stream_size;
    deferred_.clear();
    auto started = Clock::now();
    auto greys = small_grey(rgb01);
    timing_.grey_ms += elapsed_ms(started);
    timing_.frames += static_cast<uint64_t>(greys.size(0));
    auto decisions = plan(greys, settings);

    std::vector<int64_t> chosen;
    for (size_t i = 0; i < decisions.size(); ++i) {
      if (decisions[i].infer) chosen.push_back(static_cast<int64_t>(i));
    }
    at::Tensor inferred;
    if (!chosen.empty()) {
      auto index = at::tensor(chosen, at::TensorOptions().dtype(at::kLong).device(rgb01.device()));
      started = Clock::now();
      inferred = infer(chosen.size() == decisions.size() ? at::Tensor() : index);
      timing_.model_ms += elapsed_ms(started);
    }
    const int64_t h = inferred.defined() ? inferred.size(2) : previous_prob_.size(1);
    const int64_t w = inferred.defined() ? inferred.size(3) : previous_prob_.size(2);

    std::vector<at::Tensor> outputs;
    int64_t next = 0;
    for (size_t i = 0; i < decisions.size(); ++i) {
      const bool infer = decisions[i].infer;
      if (decisions[i].cut) {
        if (held_) outputs.push_back(release_held(at::Tensor(), Flows{}));  // no successor in its scene
        previous_prob_ = at::Tensor();
        previous_grey_ = at::Tensor();
        ++counts.scene_cuts;
      }
      at::Tensor prob;
      if (infer) {
        prob = inferred[next++];
        ++counts.inferred;
      } else {
        ++counts.skipped;
      }
      auto grey = greys[static_cast<int64_t>(i)];
      Flows pair;
      if (previous_prob_.defined() && (!infer || settings.smooth > 0 || settings.lookahead)) pair = flows(grey, infer);
      if (held_) outputs.push_back(release_held(prob, pair));
      auto step = propagate(grey, prob, infer, settings.smooth, settings.lookahead, h, w, pair);
      if (settings.lookahead) {
        held_ = std::move(step);
      } else {
        outputs.push_back(step.out);
        if (defer_) deferred_.push_back(std::move(step.deferred));
      }
    }
    return outputs.empty() ? at::Tensor() : at::stack(outputs);
  } catch (...) {
    reset();  // never carry half-updated state into the next batch
    throw;
  }
}

}  // namespace bd
