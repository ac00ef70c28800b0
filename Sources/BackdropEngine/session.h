// One stream's processing in the engine: frames in, matte computed on the inference device,
// frames out in the requested format. All per-pixel work is torch ops.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <memory>

#if defined(BD_WITH_CUDA)
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Optional.h>
#endif

#include "backdrop_engine.h"
#include "color.h"
#include "model.h"
#include "temporal.h"
#include "transfer.h"

namespace bd {

class Session {
 public:
  Session(std::shared_ptr<MatteModel> model, const bd_session_config& config, c10::Device device, int threads);

  void set_background_image(const uint8_t* rgb, int32_t stride, int width, int height);
  // With config.temporal_lookahead, process() writes the frames that now have their successor
  // (n - 1 or n of them, see backdrop_engine.h) and holds the newest; drain() writes the held one
  // and returns false when none is held.
  void process(const bd_frame* inputs, const bd_frame* outputs, int n, const bd_composite_params& params);
  bool drain(const bd_frame* output, const bd_composite_params& params);
  // Counters since creation, and forgetting the state carried across batches (FLUSH, DISCONT, caps).
  // (the NaN counts live on the device and are read here, when asked, not once per batch)
  bd_session_stats stats() const;
  void reset();
  TemporalStage::Timing temporal_timing() const { return temporal_.timing(); }

 private:
  // The input batch on the device: RGB in 0..255 for packed formats, Y'CbCr code values for YUV.
  struct Input {
    at::Tensor rgb255;
    YuvPlanes yuv;
    bool is_yuv = false;
  };

  void process_batch(const bd_frame* inputs, const bd_frame* outputs, int n, const bd_composite_params& params);
  // With CUDA memory on the session's own stream: waits until the frames are read and written.
  void finish_device_work();
  // What every call that processes frames sets up on the caller's thread, for its duration:
  // inference mode, the session's CUDA stream, libtorch's thread count.
  struct CallScope {
    explicit CallScope(const Session& session);
    c10::InferenceMode mode;
#if defined(BD_WITH_CUDA)
    c10::optional<c10::cuda::CUDAStreamGuard> stream;
#endif
  };
  Input load_input(const bd_frame* inputs, int n);
  // [n,c,h,w] uint8 on the device → plane `plane_index` of each output frame
  void store(const at::Tensor& nchw, const bd_frame* outputs, int plane_index, const char* what);
  // Frames [start, start + count) of an input, and two inputs one after the other (look-ahead).
  static Input slice(const Input& input, int64_t start, int64_t count);
  static Input concat(const Input& first, const Input& second);
  at::Tensor rgb01(const Input& input) const;
  at::Tensor inference_input(const at::Tensor& rgb01) const;  // [n,3,h,w]: resized to the inference size
  // The model's probability [n,1,h,w] at the inference size (the stages between the two steps
  // work on this grid), then brought to the stream size [n,1,H,W] (DESIGN §10 order).
  at::Tensor probability_small(const at::Tensor& rgb01);
  // coverage: the cascade's, for these frames on prob_small's grid, or undefined
  at::Tensor to_stream_size(const at::Tensor& prob_small, const Input& input, const at::Tensor& coverage,
                            const bd_composite_params& params) const;
  // Everything after the temporal stage for m frames: stream size, finish, alpha, writing.
  void write_frames(const Input& input, const at::Tensor& prob_small, const at::Tensor& coverage,
                    const bd_composite_params& params, bool temporal, const bd_frame* outputs, int m);
  // normalisation, precision, forward and sigmoid of frames already at the model's input size
  // (frames: the batch holds whole frames, whose NaN outputs are counted; false for cascade tiles)
  at::Tensor infer(const at::Tensor& rgb01_small, bool frames = true);
  // spatial refinement (issue 9): the resolution cascade on the small grid, the grey guide of the
  // guided upsampling, and the foreground colour in semi-transparent pixels
  at::Tensor cascade(const at::Tensor& prob_small, const at::Tensor& rgb01, const bd_composite_params& params);
  at::Tensor guide_grey(const Input& input) const;
  // NaN → -inf (background); with `count`, NaN and frames wholly within [0, 1] are counted in stats_
  void count_output_and_clear_nan(at::Tensor& output, bool count);
  at::Tensor alpha8(const at::Tensor& probability, const bd_composite_params& params) const;
  // coverage: the soft probability at stream size, for the foreground colour estimate (issue 9)
  void write_rgb(const Input& input, const at::Tensor& alpha8, const at::Tensor& coverage,
                 const bd_composite_params& params, const bd_frame* outputs, int n);
  void write_yuv(const Input& input, const at::Tensor& alpha8, const at::Tensor& coverage,
                 const bd_composite_params& params, const bd_frame* outputs, int n);
  at::Tensor background_rgb255(const bd_composite_params& params, const at::Tensor& foreground) const;
  YuvPlanes background_yuv(const bd_composite_params& params, const YuvPlanes& foreground) const;
  at::Tensor to_device(const at::Tensor& host) const;
  // Where the caller's input and output planes live (issue 14): the CPU, or the session's GPU.
  c10::Device input_device() const { return config_.input_memory == BD_MEMORY_CUDA ? device_ : c10::Device(c10::kCPU); }
  c10::Device output_device() const { return config_.output_memory == BD_MEMORY_CUDA ? device_ : c10::Device(c10::kCPU); }

  bd_session_stats stats_{};
  // NaN frames, NaN pixels and frames wholly within [0, 1], [3] int64 on the device, summed there:
  // reading them per batch would synchronise a CUDA stream in the middle of every batch
  // (undefined until the first count)
  at::Tensor output_totals_;
  TemporalStage temporal_;  // state carried from frame to frame (issue 9)
  // spatial refinement (issue 9): where this batch's cascade tiles already give full detail, on
  // the cascade grid (undefined without tiles); the guided upsampling leaves those cells alone
  at::Tensor cascade_coverage_;
  // temporal-lookahead: the newest frame's input (an own copy) and cascade coverage, until its
  // successor arrives or the stream drains.
  bool holding_ = false;
  Input held_input_;
  at::Tensor held_coverage_;

  std::shared_ptr<MatteModel> model_;
  bd_session_config config_;
  c10::Device device_;
  int threads_;
  DeviceTransfer transfer_;  // the frames in and out (pinned staging and a copy stream on CUDA)
  YuvCoding input_coding_, output_coding_;
  at::Tensor mean_, std_;           // ImageNet normalisation, [1,3,1,1] on the device
  at::Tensor background_image_;     // [1,3,H,W] RGB 0..1 on the device, or undefined
  YuvPlanes background_image_yuv_;  // the same in the output coding, made once
#if defined(BD_WITH_CUDA)
  // One stream per session, so that two elements on one GPU do not serialise on the default stream.
  c10::optional<c10::cuda::CUDAStream> stream_;
#endif
};

bool is_rgb_family(bd_pixel_format format);
bool has_alpha(bd_pixel_format format);

}  // namespace bd
