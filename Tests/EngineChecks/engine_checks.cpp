// Engine-level checks over the bd_ C ABI, built with AddressSanitizer and UndefinedBehaviorSanitizer
// by scripts/ci-sanitizers.sh (fuzz/build.sh checks): real models, real frames, concrete values.
// Run from the repository root (it reads models/designed/*.pt and writes into a temp folder).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "backdrop_engine.h"
#include "checks.h"

namespace {

std::string temp_dir;

std::string write_file(const std::string& name, const std::vector<uint8_t>& bytes) {
  const std::string path = temp_dir + "/" + name;
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return path;
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// A safetensors file: the 8-byte header length (`declared`, or the header's own length when 0),
// the header, then `data` zero bytes.
std::vector<uint8_t> safetensors(const std::string& header, uint64_t declared, size_t data) {
  if (declared == 0) declared = header.size();
  std::vector<uint8_t> bytes(8);
  for (int i = 0; i < 8; ++i) bytes[i] = uint8_t(declared >> (8 * i));
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.resize(bytes.size() + data, 0);
  return bytes;
}

struct Model {
  bd_model* handle = nullptr;
  bd_status status;
  std::string error;
  explicit Model(const std::string& path) {
    bd_model_options options{};
    options.path = path.c_str();
    options.device = BD_DEVICE_CPU;
    options.threads = 2;
    char err[2048];
    status = bd_model_open(&options, &handle, err, sizeof err);
    error = err;
  }
  ~Model() { if (handle) bd_model_release(handle); }
};

struct Session {
  bd_session* handle = nullptr;
  bd_status status;
  std::string error;
  Session(bd_model* model, int width, int height, bd_pixel_format in, bd_pixel_format out, int inference, int batch,
          int lookahead = 0, int output = BD_MODEL_OUTPUT_LOGITS) {
    bd_session_config config{};
    config.temporal_lookahead = lookahead;
    std::memcpy(&config.model_output, &output, sizeof output);  // any number, as a C caller may store
    config.width = width;
    config.height = height;
    config.input_format = in;
    config.output_format = out;
    config.inference_width = inference;
    config.inference_height = inference;
    config.max_batch = batch;
    char err[2048];
    status = bd_session_create(model, &config, &handle, err, sizeof err);
    error = err;
  }
  ~Session() { if (handle) bd_session_destroy(handle); }
};

// A frame as one allocation per plane, sized exactly (so ASan sees any overrun).
struct Frame {
  std::vector<std::vector<uint8_t>> planes;
  std::vector<int32_t> strides;
  // Pointers made on demand: a Frame may be copied (into a vector), its planes move with it.
  bd_frame view() {
    bd_frame frame{};
    for (size_t p = 0; p < planes.size(); ++p) {
      frame.planes[p] = planes[p].data();
      frame.strides[p] = strides[p];
    }
    return frame;
  }
  Frame(int width, int height, bd_pixel_format format) {
    const int cw = (width + 1) / 2, ch = (height + 1) / 2;
    std::vector<std::pair<int, int>> shape;  // stride, rows
    switch (format) {
      case BD_FORMAT_I420: shape = {{width, height}, {cw, ch}, {cw, ch}}; break;
      case BD_FORMAT_A420: shape = {{width, height}, {cw, ch}, {cw, ch}, {width, height}}; break;
      case BD_FORMAT_NV12: shape = {{width, height}, {2 * cw, ch}}; break;
      case BD_FORMAT_GRAY8: shape = {{width, height}}; break;
      case BD_FORMAT_RGB: case BD_FORMAT_BGR: shape = {{3 * width, height}}; break;
      default: shape = {{4 * width, height}}; break;
    }
    planes.resize(shape.size());
    for (size_t p = 0; p < shape.size(); ++p) {
      planes[p].assign(size_t(shape[p].first) * shape[p].second, 0);
      strides.push_back(shape[p].first);
    }
  }
};

// Dark (20) field with a bright (230) rectangle [x0, x1) x [y0, y1), packed RGBA.
Frame picture(int width, int height, int x0, int y0, int x1, int y1) {
  Frame f(width, height, BD_FORMAT_RGBA);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const uint8_t v = (x >= x0 && x < x1 && y >= y0 && y < y1) ? 230 : 20;
      uint8_t* p = &f.planes[0][size_t(y) * width * 4 + size_t(x) * 4];
      p[0] = p[1] = p[2] = v;
      p[3] = 255;
    }
  return f;
}

bd_composite_params params(bool soft = false, bd_background background = BD_BACKGROUND_NONE) {
  bd_composite_params p{};
  p.threshold = 0.5f;
  p.soft = soft ? 1 : 0;
  p.background = background;
  p.color[1] = 255;
  p.blur_sigma = 4;
  return p;
}

bd_status process(Session& s, std::vector<Frame>& in, std::vector<Frame>& out, const bd_composite_params& p, std::string* error = nullptr) {
  std::vector<bd_frame> a, b;
  for (auto& f : in) a.push_back(f.view());
  for (auto& f : out) b.push_back(f.view());
  char err[2048];
  const bd_status status = bd_session_process(s.handle, a.data(), b.data(), int(a.size()), &p, err, sizeof err);
  if (error) *error = err;
  return status;
}

const std::string designed = "models/designed/";

void lumakey_matte() {
  Model model(designed + "lumakey.pt");
  CHECK(model.status == BD_OK, "%s", model.error.c_str());
  if (!model.handle) return;
  bd_model_info info{};
  bd_model_get_info(model.handle, &info);
  CHECK(info.kind == BD_MODEL_TORCHSCRIPT && info.device == BD_DEVICE_CPU && info.precision == BD_PRECISION_FP32, "info");
  Session s(model.handle, 64, 64, BD_FORMAT_RGBA, BD_FORMAT_RGBA, 64, 3);
  CHECK(s.status == BD_OK, "%s", s.error.c_str());
  std::vector<Frame> in{picture(64, 64, 16, 12, 48, 36), picture(64, 64, 0, 0, 8, 8), picture(64, 64, 40, 40, 64, 64)};
  std::vector<Frame> out{Frame(64, 64, BD_FORMAT_RGBA), Frame(64, 64, BD_FORMAT_RGBA), Frame(64, 64, BD_FORMAT_RGBA)};
  CHECK(process(s, in, out, params()) == BD_OK, "process");
  auto alpha = [&](int i, int x, int y) { return out[i].planes[0][size_t(y) * 256 + size_t(x) * 4 + 3]; };
  CHECK(alpha(0, 32, 24) == 255 && alpha(0, 2, 2) == 0 && alpha(0, 60, 60) == 0, "frame 0 alpha");
  CHECK(alpha(1, 3, 3) == 255 && alpha(1, 32, 32) == 0, "frame 1 alpha");
  CHECK(alpha(2, 50, 50) == 255 && alpha(2, 10, 10) == 0, "frame 2 alpha");
  CHECK(out[0].planes[0][size_t(24) * 256 + 32 * 4] == 230, "colour kept: %d", out[0].planes[0][size_t(24) * 256 + 32 * 4]);
  bd_session_stats stats{};
  bd_session_get_stats(s.handle, &stats);
  CHECK(stats.frames == 3 && stats.frames_inferred == 3 && stats.nan_frames == 0 && stats.nan_pixels == 0, "stats");
  bd_session_reset(s.handle);

  // Argument errors: status, never a crash.
  std::vector<Frame> none;
  std::string error;
  CHECK(process(s, none, none, params(), &error) == BD_ERR_INVALID_ARGUMENT, "n = 0: %s", error.c_str());
  std::vector<Frame> four_in{picture(64, 64, 0, 0, 1, 1), picture(64, 64, 0, 0, 1, 1), picture(64, 64, 0, 0, 1, 1), picture(64, 64, 0, 0, 1, 1)};
  std::vector<Frame> four_out{Frame(64, 64, BD_FORMAT_RGBA), Frame(64, 64, BD_FORMAT_RGBA), Frame(64, 64, BD_FORMAT_RGBA), Frame(64, 64, BD_FORMAT_RGBA)};
  CHECK(process(s, four_in, four_out, params(), &error) == BD_ERR_INVALID_ARGUMENT, "n > max_batch: %s", error.c_str());
  bd_frame bad = in[0].view();
  bd_frame good_out = out[0].view();
  bad.strides[0] = 3;
  char err[512];
  auto p = params();
  CHECK(bd_session_process(s.handle, &bad, &good_out, 1, &p, err, sizeof err) == BD_ERR_INVALID_ARGUMENT, "short stride: %s", err);
  CHECK(bd_session_process(nullptr, &bad, &good_out, 1, &p, err, sizeof err) == BD_ERR_INVALID_ARGUMENT, "NULL session");
}

// temporal_lookahead: outputs one frame late, written into exactly as many frames as promised
// (ASan sees a write past them), the held frame drained at the end, dropped at reset.
void lookahead() {
  Model model(designed + "lumakey.pt");
  if (!model.handle) return;
  Session refused(model.handle, 64, 64, BD_FORMAT_RGBA, BD_FORMAT_RGBA, 64, 3, 2);
  CHECK(refused.status == BD_ERR_INVALID_ARGUMENT && refused.error.find("temporal_lookahead is 2") != std::string::npos,
        "lookahead 2 refused: %s", refused.error.c_str());
  Session s(model.handle, 64, 64, BD_FORMAT_RGBA, BD_FORMAT_RGBA, 64, 3, 1);
  CHECK(s.status == BD_OK, "%s", s.error.c_str());
  if (!s.handle) return;
  // The same rectangle in every frame, each frame with its own brightness: the colour, kept as it
  // is where alpha is 255, says which frame an output is.
  auto frame = [](int i) {
    Frame f = picture(64, 64, 16, 12, 48, 36);
    for (size_t p = 0; p < f.planes[0].size(); p += 4) {
      if (f.planes[0][p] == 230) f.planes[0][p] = f.planes[0][p + 1] = f.planes[0][p + 2] = uint8_t(230 - 10 * i);
    }
    return f;
  };
  auto centre = [](Frame& f) { return std::pair<int, int>(f.planes[0][size_t(24) * 256 + 32 * 4], f.planes[0][size_t(24) * 256 + 32 * 4 + 3]); };
  std::vector<Frame> in{frame(0), frame(1), frame(2)};
  std::vector<Frame> out{Frame(64, 64, BD_FORMAT_RGBA), Frame(64, 64, BD_FORMAT_RGBA)};
  std::string error;
  CHECK(process(s, in, out, params()) == BD_OK, "first batch");
  CHECK(centre(out[0]) == std::make_pair(230, 255) && centre(out[1]) == std::make_pair(220, 255),
        "first batch writes frames 0 and 1: %d/%d, %d/%d", centre(out[0]).first, centre(out[0]).second,
        centre(out[1]).first, centre(out[1]).second);
  std::vector<Frame> one_in{frame(3)};
  std::vector<Frame> one_out{Frame(64, 64, BD_FORMAT_RGBA)};
  CHECK(process(s, one_in, one_out, params()) == BD_OK, "second batch");
  CHECK(centre(one_out[0]).first == 210, "then frame 2: %d", centre(one_out[0]).first);
  Frame drained(64, 64, BD_FORMAT_RGBA);
  bd_frame view = drained.view();
  auto p = params();
  int written = -1;
  char err[512];
  CHECK(bd_session_drain(s.handle, &view, &p, &written, err, sizeof err) == BD_OK && written == 1, "drain: %s", err);
  CHECK(centre(drained).first == 200 && centre(drained).second == 255, "the drain writes frame 3: %d", centre(drained).first);
  CHECK(bd_session_drain(s.handle, &view, &p, &written, err, sizeof err) == BD_OK && written == 0, "nothing left to drain");
  // After a drain nothing is held: a single frame writes nothing (outputs may be NULL).
  std::vector<bd_frame> single{one_in[0].view()};
  CHECK(bd_session_process(s.handle, single.data(), nullptr, 1, &p, err, sizeof err) == BD_OK, "n = 1, nothing written: %s", err);
  bd_session_reset(s.handle);
  CHECK(bd_session_drain(s.handle, &view, &p, &written, err, sizeof err) == BD_OK && written == 0, "reset dropped the held frame");
  CHECK(bd_session_drain(s.handle, &view, &p, nullptr, err, sizeof err) == BD_ERR_INVALID_ARGUMENT, "NULL written");
  // A failed batch drops the held frame: the caller (which drops its own) and the session agree.
  CHECK(bd_session_process(s.handle, single.data(), nullptr, 1, &p, err, sizeof err) == BD_OK, "held again: %s", err);
  bd_frame bad = one_in[0].view();
  bad.strides[0] = 3;
  bd_frame two_out[2] = {one_out[0].view(), drained.view()};
  CHECK(bd_session_process(s.handle, &bad, two_out, 1, &p, err, sizeof err) == BD_ERR_INVALID_ARGUMENT, "short stride: %s", err);
  CHECK(bd_session_drain(s.handle, &view, &p, &written, err, sizeof err) == BD_OK && written == 0, "the failure dropped the held frame");
  bd_session_stats stats{};
  bd_session_get_stats(s.handle, &stats);
  CHECK(stats.frames == 6 && stats.frames_inferred == 6, "stats count arrivals: %llu", (unsigned long long)stats.frames);
}

// Every input and output format at odd sizes, resized inference, every backdrop.
void formats_and_sizes() {
  Model model(designed + "lumakey.pt");
  if (!model.handle) return;
  const bd_pixel_format inputs[] = {BD_FORMAT_I420, BD_FORMAT_NV12, BD_FORMAT_RGBA, BD_FORMAT_BGRA, BD_FORMAT_RGBX, BD_FORMAT_BGRX, BD_FORMAT_RGB, BD_FORMAT_BGR};
  const bd_pixel_format outputs[] = {BD_FORMAT_A420, BD_FORMAT_GRAY8, BD_FORMAT_I420, BD_FORMAT_NV12, BD_FORMAT_RGBA, BD_FORMAT_BGR};
  const int sizes[][2] = {{1, 1}, {33, 17}, {7, 64}};
  int ran = 0;
  for (auto& size : sizes)
    for (auto in_format : inputs)
      for (auto out_format : outputs) {
        Session s(model.handle, size[0], size[1], in_format, out_format, 32, 2);
        CHECK(s.status == BD_OK, "%dx%d: %s", size[0], size[1], s.error.c_str());
        if (!s.handle) continue;
        std::vector<Frame> in{Frame(size[0], size[1], in_format), Frame(size[0], size[1], in_format)};
        for (auto& plane : in[1].planes) std::fill(plane.begin(), plane.end(), 235);
        std::vector<Frame> out{Frame(size[0], size[1], out_format), Frame(size[0], size[1], out_format)};
        for (auto background : {BD_BACKGROUND_NONE, BD_BACKGROUND_COLOR, BD_BACKGROUND_BLUR}) {
          std::string error;
          CHECK(process(s, in, out, params(background == BD_BACKGROUND_BLUR, background), &error) == BD_OK, "%s", error.c_str());
          ++ran;
          if (out_format == BD_FORMAT_GRAY8 && background == BD_BACKGROUND_NONE) {
            // Binary matte: a frame of 235 everywhere is bright (foreground) in every input format.
            CHECK(out[1].planes[0][0] == 255, "bright frame: foreground (%d)", out[1].planes[0][0]);
          }
        }
      }
  CHECK(ran == 3 * 8 * 6 * 3, "ran %d", ran);
}

void nan_model() {
  Model model(designed + "nan_bright.pt");
  CHECK(model.status == BD_OK, "%s", model.error.c_str());
  if (!model.handle) return;
  for (bool soft : {false, true}) {
    Session s(model.handle, 64, 64, BD_FORMAT_RGBA, BD_FORMAT_RGBA, 64, 2);
    CHECK(s.status == BD_OK, "%s", s.error.c_str());
    std::vector<Frame> in{picture(64, 64, 16, 12, 48, 36), picture(64, 64, 0, 0, 0, 0)};
    std::vector<Frame> out{Frame(64, 64, BD_FORMAT_RGBA), Frame(64, 64, BD_FORMAT_RGBA)};
    CHECK(process(s, in, out, params(soft)) == BD_OK, "process");
    int opaque = 0;
    for (int i = 0; i < 64 * 64; ++i) opaque += out[0].planes[0][size_t(i) * 4 + 3] != 0;
    CHECK(opaque == 0, "NaN must be background (soft=%d): %d opaque pixels", soft, opaque);
    bd_session_stats stats{};
    bd_session_get_stats(s.handle, &stats);
    CHECK(stats.nan_pixels == 32 * 24 && stats.nan_frames == 1 && stats.frames == 2,
          "nan_pixels %llu nan_frames %llu", (unsigned long long)stats.nan_pixels, (unsigned long long)stats.nan_frames);
  }
}

// model_output: probkey.pt returns probabilities (its own sigmoid). Read as logits every pixel is
// unsure foreground, and its frames are counted as wholly within [0, 1]; read as probabilities it
// gives a real matte. lumakey's logits are never counted so.
void probability_output() {
  Model probkey(designed + "probkey.pt");
  Model lumakey(designed + "lumakey.pt");
  CHECK(probkey.status == BD_OK && lumakey.status == BD_OK, "%s %s", probkey.error.c_str(), lumakey.error.c_str());
  if (!probkey.handle || !lumakey.handle) return;
  struct Case { bd_model* model; int output; int background_alpha; uint64_t unit_frames; };
  for (const Case& c : {Case{probkey.handle, BD_MODEL_OUTPUT_LOGITS, 255, 2}, Case{probkey.handle, BD_MODEL_OUTPUT_PROBABILITY, 0, 2},
                        Case{lumakey.handle, BD_MODEL_OUTPUT_LOGITS, 0, 0}}) {
    Session s(c.model, 64, 64, BD_FORMAT_RGBA, BD_FORMAT_RGBA, 64, 2, 0, c.output);
    CHECK(s.status == BD_OK, "%s", s.error.c_str());
    std::vector<Frame> in{picture(64, 64, 16, 12, 48, 36), picture(64, 64, 16, 12, 48, 36)};
    std::vector<Frame> out{Frame(64, 64, BD_FORMAT_RGBA), Frame(64, 64, BD_FORMAT_RGBA)};
    CHECK(process(s, in, out, params(false)) == BD_OK, "process");
    const int background = out[0].planes[0][(2 * 64 + 2) * 4 + 3], subject = out[0].planes[0][(24 * 64 + 32) * 4 + 3];
    CHECK(background == c.background_alpha && subject == 255, "output %d: background alpha %d, subject %d", c.output,
          background, subject);
    bd_session_stats stats{};
    bd_session_get_stats(s.handle, &stats);
    CHECK(stats.frames_unit_range == c.unit_frames && stats.frames_inferred == 2, "output %d: frames_unit_range %llu",
          c.output, (unsigned long long)stats.frames_unit_range);
  }
  Session unknown(lumakey.handle, 64, 64, BD_FORMAT_RGBA, BD_FORMAT_RGBA, 64, 2, 0, 7);
  CHECK(unknown.status == BD_ERR_INVALID_ARGUMENT && unknown.error.find("unknown model_output 7") != std::string::npos,
        "%s", unknown.error.c_str());
}

void contract_breaks() {
  for (auto [name, cause] : {std::pair<std::string, std::string>{"half_size", "at the input's size"},
                             {"wrong_output", "logits [B,1,H,W]"}, {"wrong_input", "failed on an input"}}) {
    Model model(designed + name + ".pt");
    CHECK(model.status == BD_OK, "%s: %s", name.c_str(), model.error.c_str());
    if (!model.handle) continue;
    Session s(model.handle, 64, 48, BD_FORMAT_RGBA, BD_FORMAT_RGBA, 64, 1);
    CHECK(s.status == BD_ERR_MODEL && s.handle == nullptr, "%s: status %d", name.c_str(), s.status);
    CHECK(s.error.find(cause) != std::string::npos && s.error.find(name + ".pt") != std::string::npos, "%s: %s", name.c_str(), s.error.c_str());
  }
}

void bad_model_files() {
  const auto lumakey = read_file(designed + "lumakey.pt");
  const std::string valid = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  const std::string folder = temp_dir + "/folder";
  mkdir(folder.c_str(), 0755);
  struct Case { std::string path, cause; };
  std::vector<Case> cases = {
    {temp_dir + "/missing.pt", "does not exist"},
    {folder, "is a directory"},
    {write_file("empty.pt", {}), "neither a TorchScript archive"},
    {write_file("random.pt", std::vector<uint8_t>(4096, 0x5a)), "neither a TorchScript archive"},
    {write_file("half.pt", std::vector<uint8_t>(lumakey.begin(), lumakey.begin() + lumakey.size() / 2)), "is not a valid TorchScript model"},
    {write_file("huge.safetensors", safetensors("{}", uint64_t(1) << 40, 0)), "exceeds the 100 MB limit"},
    {write_file("past.safetensors", safetensors("{}", 4096, 0)), "runs past the end"},
    {write_file("json.safetensors", safetensors(R"({"a":)", 0, 0)), "not valid JSON"},
    {write_file("short.safetensors", safetensors(valid, 0, 6)), "lies past the data area"},
    {write_file("dtype.safetensors", safetensors(R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})", 0, 1)), "unsupported dtype"},
    {write_file("overlap.safetensors", safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 0, 12)), "overlap"},
    {write_file("notbiref.safetensors", safetensors(valid, 0, 16)), "is not a BiRefNet"},
  };
  for (auto& c : cases) {
    Model model(c.path);
    CHECK(model.status == BD_ERR_MODEL && model.handle == nullptr, "%s: status %d (%s)", c.path.c_str(), model.status, model.error.c_str());
    CHECK(model.error.find(c.path) != std::string::npos || model.error.find(c.path.substr(temp_dir.size() + 1)) != std::string::npos,
          "%s: the message must name the file: %s", c.path.c_str(), model.error.c_str());
    CHECK(model.error.find(c.cause) != std::string::npos, "%s: expected \"%s\" in: %s", c.path.c_str(), c.cause.c_str(), model.error.c_str());
  }
}

// CUDA memory (issue 14) on a CPU session: refused at session creation with what to change.
void cuda_memory_refused() {
  Model model(designed + "lumakey.pt");
  if (!model.handle) return;
  const bool cuda_engine = std::string(bd_engine_version()).find("CUDA: built in") != std::string::npos;
  const std::string cause = cuda_engine ? "its model runs on the CPU" : "built without CUDA";
  for (int which = 0; which < 3; ++which) {
    bd_session_config config{};
    config.width = 64;
    config.height = 48;
    config.input_format = BD_FORMAT_NV12;
    config.output_format = BD_FORMAT_A420;
    config.inference_width = config.inference_height = 64;
    config.max_batch = 1;
    int stream_token = 0;
    if (which == 0) config.input_memory = BD_MEMORY_CUDA;
    if (which == 1) config.output_memory = BD_MEMORY_CUDA;
    if (which == 2) config.cuda_stream = &stream_token;
    bd_session* session = nullptr;
    char err[1024];
    const bd_status status = bd_session_create(model.handle, &config, &session, err, sizeof err);
    CHECK(status == BD_ERR_INVALID_ARGUMENT && session == nullptr, "case %d: status %d", which, status);
    CHECK(std::strstr(err, cause.c_str()) != nullptr && std::strstr(err, which == 2 ? "a CUDA stream" : "CUDA memory") != nullptr,
          "case %d: %s", which, err);
    if (session) bd_session_destroy(session);
  }
  bd_session_config config{};
  config.width = 64;
  config.height = 48;
  config.input_format = BD_FORMAT_RGBA;
  config.output_format = BD_FORMAT_RGBA;
  config.inference_width = config.inference_height = 64;
  config.max_batch = 1;
  config.output_memory = static_cast<bd_memory_kind>(7);
  bd_session* session = nullptr;
  char err[1024];
  CHECK(bd_session_create(model.handle, &config, &session, err, sizeof err) == BD_ERR_INVALID_ARGUMENT &&
            std::strstr(err, "unknown output memory kind 7") != nullptr, "%s", err);
  if (session) bd_session_destroy(session);
}

}  // namespace

int main() {
  char pattern[] = "/tmp/engine-checks-XXXXXX";
  temp_dir = mkdtemp(pattern);
  std::printf("engine: %s (ABI %u)\n", bd_engine_version(), bd_abi_version());
  const int status = checks::run_groups({
      {"lumakey matte, stats and argument errors", lumakey_matte},
      {"temporal look-ahead: one frame late, drain, reset", lookahead},
      {"every format at odd sizes and backdrops", formats_and_sizes},
      {"NaN model: background and counted", nan_model},
      {"model output read as logits or probabilities", probability_output},
      {"contract breaks refused at the probe", contract_breaks},
      {"bad model files refused with their cause", bad_model_files},
      {"CUDA memory refused on a CPU session", cuda_memory_refused},
  });
  std::string cleanup = "rm -rf " + temp_dir;
  (void)std::system(cleanup.c_str());
  return status;
}
