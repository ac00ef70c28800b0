// spatial-bench: what edge refinement, foreground colour estimation and the resolution cascade
// (issue 9) cost per 1080p and 4K frame, next to the model's own time, measured side by side in
// one run through the engine's C ABI (dlopen, as the GStreamer element loads it).
//
//   spatial-bench [--engine PATH] [--selfie FILE] [--birefnet FILE] [--sizes 1080,2160]
//                 [--iters N] [--threads N] [--cascade-size N]
//
// For each model and frame size, on the same procedural frame (a soft-edged bright subject with
// 1-px strokes over a dark textured background), straight RGBA out, soft matte, batch 1:
//   model     the model alone: a session whose stream is already at the inference size
//   base      whole frame, bilinear, no estimate, no cascade (model + pre/post at this size)
//   guided    edge-refine=guided                       → refinement = guided − base
//   fg        foreground-estimate on                   → foreground = fg − base
//   cascade   cascade=auto, bilinear                   → cascade = cascade − base
// and, for the cascade, its cost ÷ a full pass at the cascade resolution, estimated as the model
// time scaled by area (the most tiles the cascade may use is 0.45 of that area). BiRefNet weights:
// any .safetensors file, e.g. `birefnet-bench --rows lite512 --weights-t /tmp/lite.safetensors`
// writes fixture-rule (bdrand) BiRefNet-lite weights there.
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backdrop_engine.h"
#include "backdrop_engine_loader.h"

namespace {

std::string self_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = 0;
  std::string s(buf);
  return s.substr(0, s.find_last_of('/'));
}

// The repository's models folder, from this file's location (like matte-bench).
std::string repo_path(const char* relative) {
  std::string here = __FILE__;
  for (int i = 0; i < 3; i++) here = here.substr(0, here.find_last_of('/'));
  return here + "/" + relative;
}

// A frame with something for every stage to do: RGBA, dark textured coloured background, a bright
// head and shoulders with soft edges, and thin strokes leaving the head.
std::vector<uint8_t> make_frame(int width, int height) {
  std::vector<uint8_t> rgba(size_t(width) * size_t(height) * 4);
  const double scale = height / 1080.0, edge = 3.0 * scale;
  const double hy = 0.40 * height, hx = 0.5 * width, hr = 0.17 * height;
  const double by = 1.25 * height, bx = 0.5 * width, br = 0.62 * height;
  std::vector<float> alpha(size_t(width) * size_t(height));
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++) {
      const double dh = std::hypot(y - hy, x - hx) - hr, db = std::hypot(y - by, x - bx) - br;
      alpha[size_t(y) * width + x] = float(std::clamp(0.5 - std::min(dh, db) / edge, 0.0, 1.0));
    }
  for (int s = 0; s < 80; s++) {
    const double angle = -M_PI * (0.05 + 0.9 * s / 79.0), length = hr * (0.4 + 0.4 * ((s * 37) % 11) / 10.0);
    for (double t = 0; t <= 1.0; t += 0.5 / (length + 1)) {
      const double r = 0.9 * hr + length * t;
      const int x = int(std::lround(hx + r * std::cos(angle + 0.3 * t))), y = int(std::lround(hy + r * std::sin(angle + 0.3 * t)));
      if (x >= 0 && x < width && y >= 0 && y < height) alpha[size_t(y) * width + x] = 1.0f;
    }
  }
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++) {
      const double a = alpha[size_t(y) * width + x];
      const double n = 0.5 + 0.5 * std::sin(x * 0.013 + 0.7 * std::sin(y * 0.011)) * std::cos(y * 0.017);
      const double bg[3] = {0.05 + 0.2 * n, 0.06 + 0.1 * (1 - n), 0.1 + 0.25 * n};
      const double fg[3] = {0.95, 0.82, 0.68};
      uint8_t* p = &rgba[(size_t(y) * width + x) * 4];
      for (int c = 0; c < 3; c++) p[c] = uint8_t(std::lround(255.0 * (a * fg[c] + (1 - a) * bg[c])));
      p[3] = 255;
    }
  return rgba;
}

struct Variant {
  const char* name;
  bd_edge_refine edge;
  int foreground;
  bd_cascade cascade;
};

}  // namespace

int main(int argc, char** argv) {
  std::string engine_path, selfie = repo_path("models/selfie/selfie.pt"), birefnet;
  std::vector<int> sizes = {1080, 2160};
  int iters = 3, threads = 0, cascade_size = 512;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) { std::fprintf(stderr, "%s needs a value\n", a.c_str()); std::exit(2); }
      return argv[++i];
    };
    if (a == "--engine") engine_path = next();
    else if (a == "--selfie") selfie = next();
    else if (a == "--birefnet") birefnet = next();
    else if (a == "--iters") iters = std::max(1, std::atoi(next()));
    else if (a == "--threads") threads = std::atoi(next());
    else if (a == "--cascade-size") cascade_size = std::max(64, std::atoi(next()));
    else if (a == "--sizes") {
      sizes.clear();
      for (const char* p = next(); *p;) {
        sizes.push_back(std::atoi(p));
        const char* c = std::strchr(p, ',');
        if (!c) break;
        p = c + 1;
      }
    } else {
      std::printf("usage: %s [--engine PATH] [--selfie FILE] [--birefnet FILE] [--sizes 1080,2160] [--iters N]\n"
                  "          [--threads N] [--cascade-size N]\n", argv[0]);
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (engine_path.empty()) {
    const char* env = std::getenv("BACKDROP_ENGINE");
    engine_path = env && *env ? env : self_dir() + "/libbackdrop-torch.so";
  }
  setenv("OMP_WAIT_POLICY", "PASSIVE", 0);  // as birefnet-bench: idle OpenMP workers must not spin
  bd_engine_api api;
  char load_err[512];
  if (bd_engine_api_load(engine_path.c_str(), &api, load_err, sizeof load_err) != 0) {
    std::fprintf(stderr, "%s\n", load_err);
    return 1;
  }
  const int nthreads = threads > 0 ? threads : int(sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("engine: %s (%s)\nCPU threads: %d; batch 1; fastest of %d interleaved rounds after 1 warm-up; cascade-size %d\n",
              engine_path.c_str(), api.engine_version(), nthreads, iters, cascade_size);

  struct ModelRow { const char* label; std::string path; int inference; };
  std::vector<ModelRow> models;
  if (access(selfie.c_str(), R_OK) == 0) models.push_back({"selfie", selfie, 256});
  else std::printf("selfie: skipped (%s missing: scripts/setup-models.sh)\n", selfie.c_str());
  if (!birefnet.empty()) models.push_back({"birefnet-lite", birefnet, 512});
  else std::printf("BiRefNet: skipped (give --birefnet FILE; birefnet-bench --rows lite512 --weights-t FILE writes one)\n");

  const Variant variants[] = {{"base", BD_EDGE_REFINE_NONE, 0, BD_CASCADE_OFF},
                              {"guided", BD_EDGE_REFINE_GUIDED, 0, BD_CASCADE_OFF},
                              {"fg", BD_EDGE_REFINE_NONE, 1, BD_CASCADE_OFF},
                              {"cascade", BD_EDGE_REFINE_NONE, 0, BD_CASCADE_AUTO}};
  char err[2048];
  int failures = 0;
  std::printf("\nwall: fastest elapsed time; cpu: least CPU time of all threads (what the work costs when\n"
              "other processes share the cores; about threads x wall on an idle machine)\n");
  std::printf("\n%-14s %-10s %-5s %9s %9s %11s %11s %10s %16s\n", "model", "frame", "clock", "model ms", "base ms", "refine ms",
              "fg ms", "cascade ms", "cascade/full est");
  for (const auto& row : models) {
    bd_model_options mo{};
    mo.path = row.path.c_str();
    mo.device = BD_DEVICE_CPU;
    mo.precision = BD_PRECISION_FP32;
    mo.patch_order = BD_PATCH_ORDER_AUTO;
    mo.threads = nthreads;
    bd_model* model = nullptr;
    if (api.model_open(&mo, &model, err, sizeof err) != BD_OK) {
      std::printf("%-14s model: %s\n", row.label, err);
      failures++;
      continue;
    }
    // Sessions for every variant at once; rounds run each variant once in turn and the fastest
    // round counts (the machine is shared: the minimum is what the work itself costs).
    struct Run {
      bd_session* session = nullptr;
      bd_composite_params params{};
      std::vector<uint8_t> out;
      bd_frame in_frame{}, out_frame{};
      double best_ms = 1e300;
      double best_cpu_ms = 1e300;  // CPU time of the whole process (all threads): robust to other load
    };
    auto open_run = [&](Run& run, int width, int height, bd_pixel_format out_format, const Variant& v,
                        const std::vector<uint8_t>& frame) -> bool {
      bd_session_config cfg{};
      cfg.width = width;
      cfg.height = height;
      cfg.input_format = BD_FORMAT_RGBA;
      cfg.output_format = out_format;
      cfg.input_full_range = cfg.output_full_range = 1;
      cfg.inference_width = cfg.inference_height = row.inference;
      cfg.max_batch = 1;
      if (api.session_create(model, &cfg, &run.session, err, sizeof err) != BD_OK) return false;
      run.out.resize(size_t(width) * size_t(height) * 4);
      run.in_frame.planes[0] = const_cast<uint8_t*>(frame.data());
      run.in_frame.strides[0] = width * 4;
      run.out_frame.planes[0] = run.out.data();
      run.out_frame.strides[0] = out_format == BD_FORMAT_GRAY8 ? width : width * 4;
      run.params.threshold = 0.5f;
      run.params.soft = 1;
      run.params.edge_refine = v.edge;
      run.params.foreground_estimate = v.foreground;
      run.params.cascade = v.cascade;
      run.params.cascade_size = cascade_size;
      return true;
    };
    auto cpu_ms = [] {
      timespec t;
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
      return double(t.tv_sec) * 1e3 + double(t.tv_nsec) / 1e6;
    };
    auto time_run = [&](Run& run) -> bool {
      const double c0 = cpu_ms();
      auto t0 = std::chrono::steady_clock::now();
      const bool ok = api.session_process(run.session, &run.in_frame, &run.out_frame, 1, &run.params, err, sizeof err) == BD_OK;
      run.best_ms = std::min(run.best_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      run.best_cpu_ms = std::min(run.best_cpu_ms, cpu_ms() - c0);
      return ok;
    };
    for (int height : sizes) {
      const int width = height * 16 / 9;
      const auto frame = make_frame(width, height);
      const auto small = make_frame(row.inference, row.inference);
      Run runs[5];
      bool ok = open_run(runs[0], row.inference, row.inference, BD_FORMAT_GRAY8, variants[0], small);
      for (int k = 0; k < 4 && ok; k++) ok = open_run(runs[k + 1], width, height, BD_FORMAT_RGBA, variants[k], frame);
      for (int round = 0; round <= iters && ok; round++) {  // round 0 warms up
        for (auto& run : runs) {
          if (!ok) break;
          ok = time_run(run);
          if (round == 0) run.best_ms = run.best_cpu_ms = 1e300;
        }
      }
      for (auto& run : runs)
        if (run.session) api.session_destroy(run.session);
      if (!ok) {
        std::printf("%-14s %dp: %s\n", row.label, height, err);
        failures++;
        continue;
      }
      char label[32];
      std::snprintf(label, sizeof label, "%dx%d", width, height);
      for (int clock = 0; clock < 2; clock++) {
        auto pick = [&](const Run& run) { return clock == 0 ? run.best_ms : run.best_cpu_ms; };
        const double model_ms = pick(runs[0]);
        const double ms[4] = {pick(runs[1]), pick(runs[2]), pick(runs[3]), pick(runs[4])};
        // A full pass at the cascade resolution: the model on the stream scaled by inference/tile.
        const double grid = std::min<double>(width, double(width) * row.inference / cascade_size) *
                            std::min<double>(height, double(height) * row.inference / cascade_size);
        const double full_ms = model_ms * grid / (double(row.inference) * row.inference);
        std::printf("%-14s %-10s %-5s %9.1f %9.1f %11.1f %11.1f %10.1f %16.2f\n", row.label, label, clock == 0 ? "wall" : "cpu",
                    model_ms, ms[0], ms[1] - ms[0], ms[2] - ms[0], ms[3] - ms[0], (ms[3] - ms[0]) / full_ms);
      }
      std::fflush(stdout);
    }
    api.model_release(model);
  }
  return failures == 0 ? 0 : 1;
}
