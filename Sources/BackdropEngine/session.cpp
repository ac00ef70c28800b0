#include "session.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#if defined(BD_WITH_CUDA)
#include <c10/cuda/CUDAGuard.h>
#endif

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cascade.h"
#include "device_memory.h"
#include "refine.h"

namespace bd {
namespace {

// Layout of a packed RGB format: bytes per pixel and where R, G, B sit.
struct Packing {
  int64_t bytes;
  int64_t r, g, b, a;  // a < 0: no alpha/padding byte
};

Packing packing(bd_pixel_format format) {
  switch (format) {
    case BD_FORMAT_RGBA: case BD_FORMAT_RGBX: return {4, 0, 1, 2, 3};
    case BD_FORMAT_BGRA: case BD_FORMAT_BGRX: return {4, 2, 1, 0, 3};
    case BD_FORMAT_RGB: return {3, 0, 1, 2, -1};
    case BD_FORMAT_BGR: return {3, 2, 1, 0, -1};
    default: throw ArgumentError("not a packed RGB format: " + std::to_string(format));
  }
}

const char* format_name(bd_pixel_format format) {
  static const char* names[] = {"I420", "NV12", "RGBA", "BGRA", "RGBx", "BGRx", "RGB", "BGR", "A420", "GRAY8"};
  return format >= 0 && format <= BD_FORMAT_GRAY8 ? names[format] : "unknown";
}

// A plane of a caller's frame as a [rows, cols, channels] uint8 tensor: host memory without a copy,
// CUDA device memory (issue 14) as one pitched device-to-device copy on the session's GPU.
at::Tensor plane(uint8_t* data, int32_t stride, int64_t rows, int64_t cols, int64_t channels, const char* what,
                 c10::Device where = c10::Device(c10::kCPU)) {
  if (data == nullptr) throw ArgumentError(std::string("missing plane pointer for ") + what);
  if (stride < cols * channels) {
    throw ArgumentError(std::string("stride ") + std::to_string(stride) + " of " + what +
                        " is smaller than a row (" + std::to_string(cols * channels) + " bytes)");
  }
  if (where.is_cuda()) return read_device_plane(data, stride, rows, cols, channels, where, what);
  return at::from_blob(data, {rows, cols, channels}, {stride, channels, 1}, at::kByte);
}

at::Tensor to_u8(const at::Tensor& values) { return values.round().clamp_(0, 255).to(at::kByte); }

at::Tensor gaussian_kernel(double sigma, const at::TensorOptions& options) {
  const int64_t radius = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(3.0 * sigma)));
  auto x = at::arange(-radius, radius + 1, options.dtype(at::kFloat));
  auto kernel = at::exp(x * x * (-0.5 / (sigma * sigma)));
  return kernel / kernel.sum();
}

// Gaussian blur at reduced resolution: average down so the kernel stays short, separable
// depthwise convolution with edge replication, bilinear back up.
at::Tensor blur(const at::Tensor& planes, double sigma) {
  const int64_t height = planes.size(2), width = planes.size(3), channels = planes.size(1);
  const int64_t factor = std::max<int64_t>(1, static_cast<int64_t>(sigma / 3.0));
  auto small = factor > 1 ? at::avg_pool2d(planes, {factor, factor}, {factor, factor}, {0, 0}, true, false) : planes;
  const double small_sigma = sigma / static_cast<double>(factor);
  auto kernel = gaussian_kernel(small_sigma, planes.options());
  const int64_t radius = (kernel.size(0) - 1) / 2;
  auto horizontal = kernel.view({1, 1, 1, -1}).expand({channels, 1, 1, kernel.size(0)}).contiguous();
  auto vertical = kernel.view({1, 1, -1, 1}).expand({channels, 1, kernel.size(0), 1}).contiguous();
  auto out = at::replication_pad2d(small, {radius, radius, 0, 0});
  out = at::conv2d(out, horizontal, at::Tensor(), at::IntArrayRef{1, 1}, at::IntArrayRef{0, 0}, at::IntArrayRef{1, 1}, channels);
  out = at::replication_pad2d(out, {0, 0, radius, radius});
  out = at::conv2d(out, vertical, at::Tensor(), at::IntArrayRef{1, 1}, at::IntArrayRef{0, 0}, at::IntArrayRef{1, 1}, channels);
  if (factor > 1) out = at::upsample_bilinear2d(out, {height, width}, false);
  return out;
}

// Whether any pixel is partly covered: only those need a foreground colour estimate. On CUDA the
// estimate is always made: asking would stop the stream mid-batch to read one bool, which costs
// more there than the estimate (on fully covered pixels it gives the frame's own colour).
bool needs_foreground_estimate(const at::Tensor& coverage) {
  if (coverage.is_cuda()) return true;
  return coverage.gt(0.02).logical_and(coverage.lt(0.98)).any().item<bool>();
}

}  // namespace

bool is_rgb_family(bd_pixel_format format) { return format >= BD_FORMAT_RGBA && format <= BD_FORMAT_BGR; }

bool has_alpha(bd_pixel_format format) {
  return format == BD_FORMAT_RGBA || format == BD_FORMAT_BGRA || format == BD_FORMAT_A420;
}

Session::Session(std::shared_ptr<MatteModel> model, const bd_session_config& config, c10::Device device, int threads)
    : model_(std::move(model)), config_(config), device_(device), threads_(threads), transfer_(device) {
  if (config.width <= 0 || config.height <= 0) {
    throw ArgumentError("stream size " + std::to_string(config.width) + "x" + std::to_string(config.height) + " is empty");
  }
  if (config.input_format == BD_FORMAT_A420 || config.input_format == BD_FORMAT_GRAY8 ||
      config.input_format < 0 || config.input_format > BD_FORMAT_GRAY8) {
    throw ArgumentError(std::string("input format ") + format_name(config.input_format) + " is not supported");
  }
  if (config.output_format < 0 || config.output_format > BD_FORMAT_GRAY8) {
    throw ArgumentError("unknown output format " + std::to_string(config.output_format));
  }
  if (config.temporal_lookahead != 0 && config.temporal_lookahead != 1) {
    throw ArgumentError("temporal_lookahead is " + std::to_string(config.temporal_lookahead) + "; it must be 0 or 1");
  }
  // The field's bits as an integer: a caller may have stored any number there, and loading it as
  // the enum would be undefined behaviour for values outside it.
  int model_output = 0;
  static_assert(sizeof model_output == sizeof config.model_output, "bd_model_output is an int-sized C enum");
  std::memcpy(&model_output, &config.model_output, sizeof model_output);
  if (model_output != BD_MODEL_OUTPUT_LOGITS && model_output != BD_MODEL_OUTPUT_PROBABILITY) {
    throw ArgumentError("unknown model_output " + std::to_string(model_output) + " (0: logits, 1: probability)");
  }
  if (model_output == BD_MODEL_OUTPUT_PROBABILITY && model_->kind() == BD_MODEL_BIREFNET) {
    throw ArgumentError("model-output=probability is for TorchScript models that end with a sigmoid; "
                        "BiRefNet returns logits: leave model-output at logits");
  }
  if (config.inference_width <= 0 || config.inference_height <= 0 || config.max_batch <= 0) {
    throw ArgumentError("inference size and max_batch must be positive");
  }
  if (model_->kind() == BD_MODEL_BIREFNET &&
      (config.inference_width % 32 != 0 || config.inference_height % 32 != 0)) {
    throw ArgumentError("inference size " + std::to_string(config.inference_width) + "x" +
                        std::to_string(config.inference_height) +
                        " does not suit BiRefNet: inference-width and inference-height must be multiples of 32");
  }
  input_coding_ = {config.input_matrix, config.input_full_range != 0};
  output_coding_ = {config.output_matrix, config.output_full_range != 0};
  check_memory_config(config, device_);
#if defined(BD_WITH_CUDA)
  if (device_.is_cuda()) {
    // The caller's stream when it gives one (its buffers are ordered on it), else our own, so that
    // two elements on one GPU do not serialise on the default stream.
    stream_ = config.cuda_stream != nullptr ? external_stream(config.cuda_stream, device_)
                                            : c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device_.index());
  }
#endif
  auto options = at::TensorOptions().dtype(at::kFloat).device(device_);
  mean_ = at::tensor({0.485f, 0.456f, 0.406f}, options).view({1, 3, 1, 1});
  std_ = at::tensor({0.229f, 0.224f, 0.225f}, options).view({1, 3, 1, 1});

  // A TorchScript file promises the contract only by convention: run it once so that a model that
  // breaks it fails here, with its name, rather than on the first frame.
  if (model_->kind() == BD_MODEL_TORCHSCRIPT) {
    c10::InferenceMode guard;
    if (threads_ > 0 && at::get_num_threads() != threads_) at::set_num_threads(threads_);
    auto probe = at::zeros({1, 3, config.inference_height, config.inference_width}, options.dtype(model_->input_dtype()));
    model_->forward(probe);
  }
}

at::Tensor Session::to_device(const at::Tensor& host) const {
  if (host.device() == device_) return host;  // the CPU, or CUDA memory given by the caller
  return host.pin_memory().to(device_, /*non_blocking=*/true);
}

void Session::set_background_image(const uint8_t* rgb, int32_t stride, int width, int height) {
  if (width != config_.width || height != config_.height) {
    throw ArgumentError("background image is " + std::to_string(width) + "x" + std::to_string(height) +
                        " but the stream is " + std::to_string(config_.width) + "x" + std::to_string(config_.height));
  }
  auto view = plane(const_cast<uint8_t*>(rgb), stride, height, width, 3, "background image");
  background_image_ = to_device(view.permute({2, 0, 1}).unsqueeze(0).contiguous()).to(at::kFloat).div_(255.0);
  background_image_yuv_ = rgb_to_yuv(background_image_, output_coding_);
}

// [n,c,h,w] → per-frame [h,w,c] copies into the caller's planes, in host memory (through the
// transfer's staging) or in device memory (pitched device copies).
void Session::store(const at::Tensor& nchw, const bd_frame* outputs, int plane_index, const char* what) {
  const auto nhwc = nchw.permute({0, 2, 3, 1});
  const auto where = output_device();
  if (where.is_cuda()) {
    auto values = nhwc.to(where);
    for (int64_t i = 0; i < values.size(0); ++i) {
      write_device_plane(values[i], outputs[i].planes[plane_index], outputs[i].strides[plane_index], where, what);
    }
    return;
  }
  std::vector<at::Tensor> destinations;
  for (int64_t i = 0; i < nhwc.size(0); ++i) {
    destinations.push_back(plane(outputs[i].planes[plane_index], outputs[i].strides[plane_index], nhwc.size(1),
                                 nhwc.size(2), nhwc.size(3), what));
  }
  transfer_.download(nhwc, destinations);
}

Session::Input Session::load_input(const bd_frame* inputs, int n) {
  const int64_t height = config_.height, width = config_.width;
  const int64_t chroma_h = (height + 1) / 2, chroma_w = (width + 1) / 2;
  Input input;
  std::vector<at::Tensor> first, second, third;
  switch (config_.input_format) {
    case BD_FORMAT_I420:
      for (int i = 0; i < n; ++i) {
        first.push_back(plane(inputs[i].planes[0], inputs[i].strides[0], height, width, 1, "Y plane", input_device()));
        second.push_back(plane(inputs[i].planes[1], inputs[i].strides[1], chroma_h, chroma_w, 1, "U plane", input_device()));
        third.push_back(plane(inputs[i].planes[2], inputs[i].strides[2], chroma_h, chroma_w, 1, "V plane", input_device()));
      }
      input.is_yuv = true;
      input.yuv.y = transfer_.upload(first).permute({0, 3, 1, 2}).to(at::kFloat);
      input.yuv.uv = at::cat({transfer_.upload(second), transfer_.upload(third)}, 3).permute({0, 3, 1, 2}).to(at::kFloat);
      return input;
    case BD_FORMAT_NV12:
      for (int i = 0; i < n; ++i) {
        first.push_back(plane(inputs[i].planes[0], inputs[i].strides[0], height, width, 1, "Y plane", input_device()));
        second.push_back(plane(inputs[i].planes[1], inputs[i].strides[1], chroma_h, chroma_w, 2, "UV plane", input_device()));
      }
      input.is_yuv = true;
      input.yuv.y = transfer_.upload(first).permute({0, 3, 1, 2}).to(at::kFloat);
      input.yuv.uv = transfer_.upload(second).permute({0, 3, 1, 2}).to(at::kFloat);
      return input;
    default: {
      const auto layout = packing(config_.input_format);
      for (int i = 0; i < n; ++i) {
        first.push_back(plane(inputs[i].planes[0], inputs[i].strides[0], height, width, layout.bytes, "RGB plane", input_device()));
      }
      auto packed = transfer_.upload(first);  // [n,H,W,bytes] uint8
      auto order = at::tensor({layout.r, layout.g, layout.b}, at::TensorOptions().dtype(at::kLong).device(device_));
      input.rgb255 = packed.index_select(3, order).permute({0, 3, 1, 2}).to(at::kFloat);
      return input;
    }
  }
}

at::Tensor Session::rgb01(const Input& input) const {
  return input.is_yuv ? yuv_to_rgb(input.yuv, input_coding_) : input.rgb255 / 255.0;
}

at::Tensor Session::inference_input(const at::Tensor& rgb01) const {
  if (rgb01.size(2) == config_.inference_height && rgb01.size(3) == config_.inference_width) return rgb01;
  // Antialiased when shrinking, as the reference pipeline (F.interpolate(..., antialias=True)).
  return at::_upsample_bilinear2d_aa(rgb01, {config_.inference_height, config_.inference_width}, false);
}

at::Tensor Session::infer(const at::Tensor& rgb01_small, bool frames) {
  auto x = ((rgb01_small - mean_) / std_).to(model_->input_dtype());
  auto output = model_->forward(x).to(at::kFloat);
  count_output_and_clear_nan(output, frames);
  // -inf (a NaN) clamps to 0, background, as its sigmoid would
  if (config_.model_output == BD_MODEL_OUTPUT_PROBABILITY) return output.clamp_(0.0, 1.0);
  return at::sigmoid(output);
}

at::Tensor Session::probability_small(const at::Tensor& rgb01) { return infer(inference_input(rgb01)); }

at::Tensor Session::cascade(const at::Tensor& prob_small, const at::Tensor& rgb01, const bd_composite_params& params) {
  cascade_coverage_ = at::Tensor();
  if (params.cascade != BD_CASCADE_AUTO) return prob_small;
  CascadeSettings settings{params.cascade_size > 0 ? params.cascade_size : 512, config_.inference_width,
                           config_.inference_height};
  auto result = cascade_refine(prob_small, rgb01, settings, [this](const at::Tensor& tiles) { return infer(tiles, /*frames=*/false); });
  cascade_coverage_ = result.coverage;
  return result.probability;
}

at::Tensor Session::guide_grey(const Input& input) const {
  if (input.is_yuv) {
    return input_coding_.full_range ? input.yuv.y / 255.0 : ((input.yuv.y - 16.0) / 219.0).clamp_(0.0, 1.0);
  }
  return (input.rgb255.narrow(1, 0, 1) * 0.299 + input.rgb255.narrow(1, 1, 1) * 0.587 +
          input.rgb255.narrow(1, 2, 1) * 0.114) / 255.0;
}

at::Tensor Session::to_stream_size(const at::Tensor& prob_small, const Input& input, const at::Tensor& coverage,
                                   const bd_composite_params& params) const {
  if (params.edge_refine == BD_EDGE_REFINE_GUIDED) {
    // The cascade's coverage only describes this grid (a stage in between may not resize it).
    const bool same_grid = coverage.defined() && coverage.sizes() == prob_small.sizes();
    return guided_upsample(prob_small, guide_grey(input), same_grid ? coverage : at::Tensor());
  }
  return bilinear_resize(prob_small, config_.height, config_.width);
}

// A model can output NaN (an overflow inside it, broken weights). NaN must not reach the matte:
// sigmoid keeps it, a threshold compare says "background" but a soft matte's byte conversion is
// undefined. Each NaN logit becomes -inf (probability 0: background) and is counted, so the
// element can tell the user once per stream. Cascade tiles (not frames) are cleared but not
// counted: their frame was counted by the whole-frame pass. Frames whose whole output lies within
// [0, 1] are counted too: logits never do that on a real frame (it would make every pixel unsure
// foreground), probabilities always do, so the element can say a model's sigmoid is doubled.
void Session::count_output_and_clear_nan(at::Tensor& output, bool count) {
  auto nan = at::isnan(output);
  if (count) {
    auto flat = output.flatten(1);
    auto per_frame = nan.flatten(1).sum(1);  // [n] int64, on the device
    auto unit = flat.amin(1).ge(0.0).logical_and_(flat.amax(1).le(1.0));  // NaN compares false
    auto batch = at::stack({per_frame.gt(0).sum(), per_frame.sum(), unit.sum()});
    if (output_totals_.defined()) output_totals_.add_(batch);
    else output_totals_ = batch;
  }
  output.masked_fill_(nan, -std::numeric_limits<float>::infinity());
}

bd_session_stats Session::stats() const {
  bd_session_stats result = stats_;
  if (output_totals_.defined()) {
    auto totals = output_totals_.to(at::kCPU);
    result.nan_frames = static_cast<uint64_t>(totals[0].item<int64_t>());
    result.nan_pixels = static_cast<uint64_t>(totals[1].item<int64_t>());
    result.frames_unit_range = static_cast<uint64_t>(totals[2].item<int64_t>());
  }
  return result;
}

at::Tensor Session::alpha8(const at::Tensor& probability, const bd_composite_params& params) const {
  if (params.soft) return to_u8(probability * 255.0);
  return probability.ge(params.threshold).to(at::kByte).mul_(255);
}

at::Tensor Session::background_rgb255(const bd_composite_params& params, const at::Tensor& foreground) const {
  auto options = foreground.options();
  switch (params.background) {
    case BD_BACKGROUND_COLOR:
      return at::tensor({float(params.color[0]), float(params.color[1]), float(params.color[2])}, options).view({1, 3, 1, 1});
    case BD_BACKGROUND_IMAGE:
      if (!background_image_.defined()) throw ArgumentError("background=image but no background image was given");
      return background_image_ * 255.0;
    case BD_BACKGROUND_BLUR:
      return blur(foreground, params.blur_sigma);
    default:
      return at::zeros({1, 3, 1, 1}, options);  // no backdrop on a format without alpha: black
  }
}

YuvPlanes Session::background_yuv(const bd_composite_params& params, const YuvPlanes& foreground) const {
  auto options = foreground.y.options();
  switch (params.background) {
    case BD_BACKGROUND_COLOR: {
      auto rgb = at::tensor({params.color[0] / 255.0f, params.color[1] / 255.0f, params.color[2] / 255.0f}, options);
      return rgb_to_yuv(rgb.view({1, 3, 1, 1}), output_coding_);
    }
    case BD_BACKGROUND_IMAGE:
      if (!background_image_.defined()) throw ArgumentError("background=image but no background image was given");
      return background_image_yuv_;
    case BD_BACKGROUND_BLUR:
      return {blur(foreground.y, params.blur_sigma), blur(foreground.uv, std::max(0.5, params.blur_sigma / 2.0))};
    default: {
      auto black = at::zeros({1, 3, 1, 1}, options);
      return rgb_to_yuv(black, output_coding_);
    }
  }
}

void Session::write_rgb(const Input& input, const at::Tensor& alpha8, const at::Tensor& coverage,
                        const bd_composite_params& params, const bd_frame* outputs, int n) {
  const auto format = config_.output_format;
  const bool composite = params.background != BD_BACKGROUND_NONE || !has_alpha(format);
  at::Tensor foreground = input.is_yuv ? yuv_to_rgb(input.yuv, input_coding_) * 255.0 : input.rgb255;
  auto a = alpha8.to(at::kFloat) / 255.0;
  at::Tensor background;
  if (composite) background = background_rgb255(params, foreground);  // blur: of the original frame
  if (params.foreground_estimate && needs_foreground_estimate(coverage)) {
    // Estimated from the soft coverage, so that a binary matte's opaque edge pixels lose the old
    // background too; kept only where the pixel is visible at all.
    foreground = at::where(alpha8.gt(0), estimate_foreground(foreground, coverage, 0.0, 255.0), foreground);
  }
  at::Tensor rgb = composite ? to_u8(background + a * (foreground - background)) : to_u8(foreground);
  const auto layout = packing(format);
  std::vector<at::Tensor> channels(layout.bytes);
  channels[layout.r] = rgb.narrow(1, 0, 1);
  channels[layout.g] = rgb.narrow(1, 1, 1);
  channels[layout.b] = rgb.narrow(1, 2, 1);
  if (layout.a >= 0) {
    channels[layout.a] = has_alpha(format) && !composite ? alpha8 : at::full_like(alpha8, 255);
  }
  store(at::cat(channels, 1), outputs, 0, "output plane");
}

void Session::write_yuv(const Input& input, const at::Tensor& alpha8, const at::Tensor& coverage,
                        const bd_composite_params& params, const bd_frame* outputs, int n) {
  const auto format = config_.output_format;
  const bool composite = params.background != BD_BACKGROUND_NONE || !has_alpha(format);
  const bool same_coding = input_coding_.matrix == output_coding_.matrix &&
                           input_coding_.full_range == output_coding_.full_range;
  YuvPlanes foreground = input.is_yuv && same_coding ? input.yuv : rgb_to_yuv(rgb01(input), output_coding_);
  YuvPlanes result = foreground;
  auto a = alpha8.to(at::kFloat) / 255.0;
  YuvPlanes background;
  if (composite) background = background_yuv(params, foreground);  // blur: of the original frame
  if (params.foreground_estimate && needs_foreground_estimate(coverage)) {
    // Compositing is affine, so the estimate works on code values as it does on RGB.
    auto chroma_coverage = downsample_chroma(coverage);
    result.y = foreground.y =
        at::where(alpha8.gt(0), estimate_foreground(foreground.y, coverage, 0.0, 255.0), foreground.y);
    result.uv = foreground.uv = at::where(downsample_chroma(a).gt(0),
                                          estimate_foreground(foreground.uv, chroma_coverage, 0.0, 255.0), foreground.uv);
  }
  if (composite) {
    result.y = background.y + a * (foreground.y - background.y);
    result.uv = background.uv + downsample_chroma(a) * (foreground.uv - background.uv);
  }
  auto y = to_u8(result.y);
  auto uv = to_u8(result.uv);
  store(y, outputs, 0, "Y plane");
  if (format == BD_FORMAT_NV12) {
    store(uv, outputs, 1, "UV plane");
  } else {
    store(uv.narrow(1, 0, 1), outputs, 1, "U plane");
    store(uv.narrow(1, 1, 1), outputs, 2, "V plane");
  }
  if (format == BD_FORMAT_A420) {
    store(composite ? at::full_like(alpha8, 255) : alpha8, outputs, 3, "alpha plane");
  }
}

Session::CallScope::CallScope(const Session& session) {
#if defined(BD_WITH_CUDA)
  if (session.stream_) stream.emplace(*session.stream_);
#endif
  // OpenMP thread counts are per calling thread, and GStreamer calls from its streaming threads.
  if (session.threads_ > 0 && at::get_num_threads() != session.threads_) at::set_num_threads(session.threads_);
}

void Session::finish_device_work() {
#if defined(BD_WITH_CUDA)
  // Device planes are read and written asynchronously on our own stream: the caller may hand them
  // on (or unmap them) as soon as we return, so the work must be done by then. A caller's stream
  // orders its own work, and synchronising it is the caller's business.
  if (stream_ && config_.cuda_stream == nullptr &&
      (config_.input_memory == BD_MEMORY_CUDA || config_.output_memory == BD_MEMORY_CUDA)) {
    stream_->synchronize();
  }
#endif
}

void Session::process(const bd_frame* inputs, const bd_frame* outputs, int n, const bd_composite_params& params) {
  try {
    process_batch(inputs, outputs, n, params);
    finish_device_work();
  } catch (...) {
    // With look-ahead the caller counts on the held frame being gone after any failure (the
    // element drops its own then), whether the batch failed before or after the stage took it.
    if (config_.temporal_lookahead != 0) reset();
    throw;
  }
}

void Session::process_batch(const bd_frame* inputs, const bd_frame* outputs, int n, const bd_composite_params& params) {
  if (n < 1 || n > config_.max_batch) {
    throw ArgumentError("batch of " + std::to_string(n) + " frames; this session takes 1 to " +
                        std::to_string(config_.max_batch));
  }
  const bool lookahead = config_.temporal_lookahead != 0;
  const int written = lookahead && !holding_ ? n - 1 : n;
  if (inputs == nullptr || (outputs == nullptr && written > 0)) throw ArgumentError("inputs and outputs must not be NULL");
  CallScope scope(*this);

  auto input = load_input(inputs, n);
  auto rgb = rgb01(input);
  // DESIGN §10 order: probability at the inference size → cascade tiles → temporal blend →
  // (guided) upsampling → threshold or soft → foreground colour → composite. Where the picture
  // stands still the guided result is blended once more (its detail carries the frame's noise).
  const auto small = inference_input(rgb);
  auto model_probability = [&](const at::Tensor& index) {
    if (!index.defined()) return cascade(infer(small), rgb, params);
    return cascade(infer(small.index_select(0, index)), rgb.index_select(0, index), params);
  };
  auto temporal = TemporalSettings::from(params);
  temporal.blend_at_stream_size = params.edge_refine == BD_EDGE_REFINE_GUIDED;
  temporal.lookahead = lookahead;
  at::Tensor prob_small;
  if (temporal.active()) {
    // The temporal stage decides which frames the model sees and stabilises the probability on
    // the model's grid (see temporal.h); its grey images come from the small frames.
    TemporalCounts counts;
    prob_small = temporal_.run(small, temporal, model_probability, counts);
    stats_.frames_inferred += counts.inferred;
    stats_.frames_skipped += counts.skipped;
    stats_.scene_cuts += counts.scene_cuts;
  } else {
    temporal_.reset();  // nothing carried while off, so turning it on starts afresh
    prob_small = model_probability(at::Tensor());
    stats_.frames_inferred += n;
  }
  stats_.frames += n;
  if (!lookahead) {
    write_frames(input, prob_small, cascade_coverage_, params, temporal.active(), outputs, n);
    return;
  }
  // Look-ahead: the frames written are the held one and all of this batch but its last, which is
  // held in turn (with its cascade coverage, when the cascade covered every frame of the batch).
  const bool batch_coverage = cascade_coverage_.defined() && cascade_coverage_.size(0) == n;
  Input frames = slice(input, 0, n - 1);
  at::Tensor coverage = batch_coverage ? cascade_coverage_.narrow(0, 0, n - 1) : at::Tensor();
  if (holding_) {
    frames = n > 1 ? concat(held_input_, frames) : held_input_;
    coverage = held_coverage_.defined() && (batch_coverage || n == 1)
                   ? (n > 1 ? at::cat({held_coverage_, coverage}) : held_coverage_)
                   : at::Tensor();
  }
  held_input_ = slice(input, n - 1, 1);
  held_coverage_ = batch_coverage ? cascade_coverage_.narrow(0, n - 1, 1) : at::Tensor();
  holding_ = true;
  if (written > 0) write_frames(frames, prob_small, coverage, params, true, outputs, written);
}

bool Session::drain(const bd_frame* output, const bd_composite_params& params) {
  if (!holding_) return false;
  if (output == nullptr) {
    reset();  // a failed drain drops the held frame, as a failed process() does
    throw ArgumentError("output must not be NULL");
  }
  CallScope scope(*this);
  auto temporal = TemporalSettings::from(params);
  temporal.blend_at_stream_size = params.edge_refine == BD_EDGE_REFINE_GUIDED;
  temporal.lookahead = true;
  Input input = std::move(held_input_);
  at::Tensor coverage = std::move(held_coverage_);
  held_input_ = Input();
  held_coverage_ = at::Tensor();
  holding_ = false;
  try {
    auto prob_small = temporal_.drain(temporal);
    write_frames(input, prob_small, coverage, params, true, output, 1);
    finish_device_work();
  } catch (...) {
    reset();
    throw;
  }
  return true;
}

void Session::write_frames(const Input& input, const at::Tensor& prob_small, const at::Tensor& coverage,
                           const bd_composite_params& params, bool temporal, const bd_frame* outputs, int m) {
  auto prob = to_stream_size(prob_small, input, coverage, params);
  if (temporal) prob = temporal_.finish(prob);
  auto alpha = alpha8(prob, params);
  const auto format = config_.output_format;
  if (format == BD_FORMAT_GRAY8) {
    store(alpha, outputs, 0, "matte plane");
  } else if (is_rgb_family(format)) {
    write_rgb(input, alpha, prob, params, outputs, m);
  } else {
    write_yuv(input, alpha, prob, params, outputs, m);
  }
}

Session::Input Session::slice(const Input& input, int64_t start, int64_t count) {
  Input part;
  part.is_yuv = input.is_yuv;
  if (count <= 0) return part;
  // Own copies: the held frame outlives the batch's tensors' views of the caller's buffers.
  if (input.is_yuv) {
    part.yuv.y = input.yuv.y.narrow(0, start, count).clone();
    part.yuv.uv = input.yuv.uv.narrow(0, start, count).clone();
  } else {
    part.rgb255 = input.rgb255.narrow(0, start, count).clone();
  }
  return part;
}

Session::Input Session::concat(const Input& first, const Input& second) {
  Input both;
  both.is_yuv = first.is_yuv;
  if (first.is_yuv) {
    both.yuv.y = at::cat({first.yuv.y, second.yuv.y});
    both.yuv.uv = at::cat({first.yuv.uv, second.yuv.uv});
  } else {
    both.rgb255 = at::cat({first.rgb255, second.rgb255});
  }
  return both;
}

// The temporal stage's frames, flow and mattes; the counters stay (they count since creation).
void Session::reset() {
  temporal_.reset();
  holding_ = false;
  held_input_ = Input();
  held_coverage_ = at::Tensor();
}

}  // namespace bd
