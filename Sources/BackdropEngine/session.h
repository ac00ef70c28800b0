// One stream's processing in the engine: frames in, matte computed on the inference device,
// frames out in the requested format. All per-pixel work is torch ops.
#pragma once

#include <ATen/ATen.h>

#include <memory>

#if defined(BD_WITH_CUDA)
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Optional.h>
#endif

#include "backdrop_engine.h"
#include "color.h"
#include "model.h"

namespace bd {

class Session {
 public:
  Session(std::shared_ptr<MatteModel> model, const bd_session_config& config, c10::Device device,
          at::ScalarType dtype, int threads);

  void set_background_image(const uint8_t* rgb, int32_t stride, int width, int height);
  void process(const bd_frame* inputs, const bd_frame* outputs, int n, const bd_composite_params& params);
  // Counters since creation, and forgetting the state carried across batches (FLUSH, DISCONT, caps).
  bd_session_stats stats() const { return stats_; }
  void reset();

 private:
  // The input batch on the device: RGB in 0..255 for packed formats, Y'CbCr code values for YUV.
  struct Input {
    at::Tensor rgb255;
    YuvPlanes yuv;
    bool is_yuv = false;
  };

  Input load_input(const bd_frame* inputs, int n) const;
  at::Tensor rgb01(const Input& input) const;
  at::Tensor probability(const at::Tensor& rgb01);  // [n,1,H,W] float, stream size
  void count_and_clear_nan(at::Tensor& logits);     // NaN → -inf (background), counted in stats_
  at::Tensor alpha8(const at::Tensor& probability, const bd_composite_params& params) const;
  void write_rgb(const Input& input, const at::Tensor& alpha8, const bd_composite_params& params,
                 const bd_frame* outputs, int n);
  void write_yuv(const Input& input, const at::Tensor& alpha8, const bd_composite_params& params,
                 const bd_frame* outputs, int n);
  at::Tensor background_rgb255(const bd_composite_params& params, const at::Tensor& foreground) const;
  YuvPlanes background_yuv(const bd_composite_params& params, const YuvPlanes& foreground) const;
  at::Tensor to_device(const at::Tensor& host) const;

  bd_session_stats stats_{};

  std::shared_ptr<MatteModel> model_;
  bd_session_config config_;
  c10::Device device_;
  at::ScalarType dtype_;
  int threads_;
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
