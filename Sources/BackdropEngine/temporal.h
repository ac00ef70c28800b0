// Temporal stage of a session (issue 9): stabilises the probability at the inference size across
// frames and decides which frames the model runs on.
//
// Per frame, in stream order (so that any batch split gives the same result):
//  1. A small grey image (the frame at the inference size, shrunk by a whole factor to a longer
//     side <= kFlowLongSide) is made on the device and copied to the CPU; the measures below use its 4x4-block average scaled to mean grey (noise and gain
//     changes are not scene changes).
//  2. Planning: the first frame after a reset and every scene cut (histogram distance to the
//     previous frame above scene_cut_threshold) run the model; otherwise the model runs when
//     infer_interval frames have passed since the last inferred one and, with skip-similar on, the
//     frame differs from that inferred frame (PSNR below the threshold).
//  3. The model runs once on all the frames that need it (one sub-batch).
//  4. Dense optical flow (OpenCV DIS, CPU) from the current to the previous grey image, and back
//     for the forward/backward check, warps the previous output probability onto the current
//     frame. A skipped frame takes that warped probability; an inferred frame blends it in with
//     a per-pixel weight  smooth · flow confidence · agreement of the two · (1 − how much surer
//     the model is than history, where they differ by more than noise), so occlusions, real
//     changes and newly confident pixels follow the model while the shimmer around p = 0.5 is
//     averaged out; where both are plainly background (subject) the blend never raises (lowers)
//     the model's value.
//  5. Look-ahead (temporal-lookahead, a session setting): a frame's output waits for the next
//     frame. When both are inferred, the next frame's model probability is warped back onto the
//     frame along the forward flow (the forward/backward check of 4, seen from the frame), and the
//     frame takes the per-pixel median of three: its flow-warped history, its own blended
//     probability and that warped successor, weighed by both flow confidences. Where history and
//     successor agree and the frame does not (a single-frame blip, however confident the model
//     was) the frame takes their value; a change that lasts (motion the flow missed, something
//     new, a fade) keeps the frame's own, as the median of a monotone sequence is its middle. The
//     corrected output is the next frame's history. The first frame of a stream, frames before a
//     cut, skipped frames and a drained frame keep their causal output. The flows are the pair
//     step 4 computes for the next frame anyway, so look-ahead costs a warp and a median.
// All per-pixel work on probabilities is torch ops on the session's device.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "backdrop_engine.h"

namespace bd {

struct TemporalSettings {
  float smooth = 0;            // history weight 0..0.95 (0 = no blending)
  int infer_interval = 1;      // the model runs on every k-th frame
  float skip_similar_db = 0;   // PSNR (dB) at or above which a frame reuses the last matte; 0 = off
  float scene_cut_threshold = 0;  // histogram distance (0..1) above which a frame is a cut; 0 = off

  // Set by the session, not from params: the output is upsampled with the guided filter, whose
  // detail comes from the full-resolution frame and so carries that frame's sensor noise, which a
  // blend on the small grid cannot reach. run() then also records its flow and weights, and
  // finish() blends the upsampled matte once more with its own history where the picture stands
  // still.
  bool blend_at_stream_size = false;
  // Set by the session from its config (fixed for its life): see 5 above.
  bool lookahead = false;

  static TemporalSettings from(const bd_composite_params& params);
  // False when every frame would be inferred and nothing blended: the stage is skipped entirely.
  bool active() const { return lookahead || smooth > 0 || infer_interval > 1 || skip_similar_db > 0; }
};

// What happened to the frames of one batch, for the session's counters.
struct TemporalCounts {
  uint64_t inferred = 0, skipped = 0, scene_cuts = 0;
};

class TemporalStage {
 public:
  // Longest side of the grey images the flow and the measures work on (the inference-size frame
  // is shrunk by a whole factor: 256² stays, 512² and 1024² give 256²).
  static constexpr int64_t kFlowLongSide = 320;

  TemporalStage();
  ~TemporalStage();

  // rgb01: [n,3,h,w] float in 0..1 on the device, at the inference size. infer: runs the model on
  // a sub-batch of rgb01 and returns its probability [m,1,h,w]. Returns [n,1,h,w]; with
  // lookahead, the frames that now have their successor ([n-1] or [n], undefined for none) while
  // the newest frame is held.
  // `infer` gets the indices (kLong, on the frames' device) of the frames the model must see, or an
  // undefined tensor for all of them, and returns their probabilities [k,1,h,w] on any grid.
  at::Tensor run(const at::Tensor& rgb01, const TemporalSettings& settings,
                 const std::function<at::Tensor(const at::Tensor& index)>& infer, TemporalCounts& counts);

  // With blend_at_stream_size: blends the stream-size probabilities [n,1,H,W] of the last run()'s
  // frames with the previous output at the stream size, warped along the same flow, weighed as
  // run() weighed them and only where the flow is still (skipped frames and fresh starts keep
  // their own). Otherwise returns prob as it is.
  at::Tensor finish(const at::Tensor& prob);

  // With lookahead: the held frame's output without a successor, [1,1,h,w] (undefined when none
  // is held); the history is kept, so the next frame continues the stream. finish() follows.
  at::Tensor drain(const TemporalSettings& settings);
  bool holding() const { return held_.has_value(); }

  // Forget everything carried across frames, the held frame too (the next frame is treated as a
  // stream's first).
  void reset();

  // Per-stage times in milliseconds summed since the stage was made, for benchmarks (on the CPU;
  // CUDA work is asynchronous, so there they time only the launches).
  struct Timing {
    double grey_ms = 0, flow_ms = 0, blend_ms = 0, model_ms = 0;
    uint64_t frames = 0;
  };
  Timing timing() const { return timing_; }

 private:
  struct Flow;  // OpenCV objects, kept out of this header
  struct Decision {
    bool infer = false, cut = false;
  };

  at::Tensor small_grey(const at::Tensor& rgb01) const;  // [n,fh,fw] uint8, CPU, contiguous
  std::vector<Decision> plan(const at::Tensor& greys, const TemporalSettings& settings);
  // Flow from grey `from` to grey `to` in pixels of the grey grid: [2,fh,fw] float on the CPU.
  at::Tensor flow(const at::Tensor& from, const at::Tensor& to);

  // blend_at_stream_size: what run() decided for each frame of the batch, for finish().
  struct Deferred {
    bool restart = true;      // no history: the frame's own probability
    bool skipped = false;     // no inference: its own (the warped matte, upsampled)
    at::Tensor displacement;  // [2,h,w] on the probability grid, in its pixels
    at::Tensor weight;        // [1,h,w] history weight of an inferred frame
  };
  // The flows between the previous grey image and a new one, on the grey grid (CPU): backward maps
  // a new pixel to where it was, forward a previous pixel to where it goes (undefined unless the
  // new frame is inferred).
  struct Flows {
    at::Tensor backward, forward;
  };
  // One frame through step 4. With keep_history (look-ahead), an inferred frame with a history
  // also keeps its warped history and that history's flow confidence for the median of step 5.
  struct Step {
    at::Tensor out;         // [1,h,w] the causal output
    at::Tensor history;     // [1,h,w] previous output warped onto this frame, or undefined
    at::Tensor confidence;  // [1,h,w] flow confidence of `history`
    bool inferred = false;
    Deferred deferred;
  };
  Flows flows(const at::Tensor& grey, bool forward);
  Step propagate(const at::Tensor& grey, const at::Tensor& prob, bool inferred, float smooth, bool keep_history,
                 int64_t h, int64_t w, const Flows& flows);
  // Step 5: the held frame's output, given the next frame's model probability (undefined: no
  // successor, or a skipped one) and the flows between the two. Becomes the history; the held
  // frame's Deferred joins deferred_.
  at::Tensor release_held(const at::Tensor& next_prob, const Flows& flows);

  std::unique_ptr<Flow> flow_;
  // Planning state: the previous frame (scene cuts), the last inferred one (skip-similar).
  bool planned_any_ = false;
  at::Tensor plan_previous_grey_, last_inferred_grey_;
  int64_t since_inference_ = 0;
  // Propagation state: the previous frame's grey image and output probability [1,h,w].
  at::Tensor previous_grey_, previous_prob_;
  // Look-ahead: the newest frame, waiting for its successor.
  std::optional<Step> held_;
  // blend_at_stream_size: the decisions for finish(), and the previous frame's output at the
  // stream size.
  std::vector<Deferred> deferred_;
  at::Tensor previous_full_;
  bool defer_ = false;
  Timing timing_;
};

}  // namespace bd
