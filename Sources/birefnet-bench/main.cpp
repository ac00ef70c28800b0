// birefnet-bench: native BiRefNet speed through the engine's public C ABI, loaded with dlopen as
// the GStreamer element loads it. Weights follow the fixtures' bdrand rule (generated here, or
// given with --weights-t/--weights-l). Prints ms/frame per backbone, size, batch and precision,
// the thread count and the peak RSS.
//
//   birefnet-bench [--engine PATH] [--rows lite512,lite1024,general512] [--batches 1,4]
//                  [--iters N] [--warmup N] [--threads N] [--weights-t FILE] [--weights-l FILE]
//                  [--cuda-only] [--no-cuda] [--no-keep-heap]
#include <limits.h>  // first: it defines __GLIBC__ on glibc
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "backdrop_engine.h"
#include "backdrop_engine_loader.h"
#include "bdrand.h"

namespace {

// ---- bdrand weights (the rule of Tests/Fixtures/birefnet/README.md, implemented once in bdrand.c) ----

struct Spec {
  std::string key;
  std::vector<int64_t> shape;
  bool i64 = false;
};

// The inference keys of BiRefNet with a swin_v1 backbone (embed 96: tiny, 192: large).
std::vector<Spec> birefnet_keys(int64_t e) {
  const bool large = e == 192;
  const int64_t depths[4] = {2, 2, large ? 18 : 6, 2};
  const int64_t win = large ? 12 : 7, n = win * win;
  std::vector<Spec> v;
  auto add = [&](const std::string& k, std::vector<int64_t> s) { v.push_back({k, s, false}); };
  auto conv = [&](const std::string& k, int64_t o, int64_t i, int64_t ks, bool bias) {
    add(k + ".weight", {o, i, ks, ks});
    if (bias) add(k + ".bias", {o});
  };
  auto bn = [&](const std::string& k, int64_t c) {
    for (const char* p : {".weight", ".bias", ".running_mean", ".running_var"}) add(k + p, {c});
  };
  add("bb.patch_embed.proj.weight", {e, 3, 4, 4});
  add("bb.patch_embed.proj.bias", {e});
  add("bb.patch_embed.norm.weight", {e});
  add("bb.patch_embed.norm.bias", {e});
  for (int i = 0; i < 4; i++) {
    const int64_t d = e << i, heads = (e / 32) << i;
    const std::string lp = "bb.layers." + std::to_string(i) + ".";
    for (int64_t j = 0; j < depths[i]; j++) {
      const std::string b = lp + "blocks." + std::to_string(j) + ".";
      add(b + "norm1.weight", {d}); add(b + "norm1.bias", {d});
      add(b + "attn.relative_position_bias_table", {(2 * win - 1) * (2 * win - 1), heads});
      v.push_back({b + "attn.relative_position_index", {n, n}, true});
      add(b + "attn.qkv.weight", {3 * d, d}); add(b + "attn.qkv.bias", {3 * d});
      add(b + "attn.proj.weight", {d, d}); add(b + "attn.proj.bias", {d});
      add(b + "norm2.weight", {d}); add(b + "norm2.bias", {d});
      add(b + "mlp.fc1.weight", {4 * d, d}); add(b + "mlp.fc1.bias", {4 * d});
      add(b + "mlp.fc2.weight", {d, 4 * d}); add(b + "mlp.fc2.bias", {d});
    }
    if (i < 3) {
      add(lp + "downsample.reduction.weight", {2 * d, 4 * d});
      add(lp + "downsample.norm.weight", {4 * d}); add(lp + "downsample.norm.bias", {4 * d});
    }
    add("bb.norm" + std::to_string(i) + ".weight", {d});
    add("bb.norm" + std::to_string(i) + ".bias", {d});
  }
  const int64_t ch[4] = {16 * e, 8 * e, 4 * e, 2 * e};
  auto dec_blk = [&](const std::string& p, int64_t in, int64_t out) {
    conv(p + ".conv_in", 64, in, 3, true);
    const std::string a = p + ".dec_att";
    auto deform = [&](const std::string& q, int64_t k) {
      conv(q + ".atrous_conv.offset_conv", 2 * k * k, 64, k, true);
      conv(q + ".atrous_conv.modulator_conv", k * k, 64, k, true);
      conv(q + ".atrous_conv.regular_conv", 256, 64, k, false);
      bn(q + ".bn", 256);
    };
    deform(a + ".aspp1", 1);
    deform(a + ".aspp_deforms.0", 1);
    deform(a + ".aspp_deforms.1", 3);
    deform(a + ".aspp_deforms.2", 7);
    conv(a + ".global_avg_pool.1", 256, 64, 1, false);
    bn(a + ".global_avg_pool.2", 256);
    conv(a + ".conv1", 64, 1280, 1, false);
    bn(a + ".bn1", 64);
    conv(p + ".conv_out", out, 64, 3, true);
    bn(p + ".bn_in", 64);
    bn(p + ".bn_out", out);
  };
  dec_blk("squeeze_module.0", ch[0] + ch[1] + ch[2] + ch[3], ch[0]);
  const int64_t ipt_in[5] = {3072, 768, 192, 48, 3};
  const int64_t ipt_out[5] = {ch[0] / 8, ch[0] / 8, ch[1] / 8, ch[2] / 8, ch[3] / 8};
  for (int i = 0; i < 5; i++) {
    const std::string p = "decoder.ipt_blk" + std::to_string(5 - i);
    conv(p + ".conv1", 64, ipt_in[i], 3, true);
    conv(p + ".conv_out", ipt_out[i], 64, 3, true);
  }
  const int64_t dec_out[4] = {ch[1], ch[2], ch[3], ch[3] / 2};
  for (int i = 0; i < 4; i++)
    dec_blk("decoder.decoder_block" + std::to_string(4 - i), ch[i] + ipt_out[i], dec_out[i]);
  conv("decoder.conv_out1.0", 1, dec_out[3] + ipt_out[4], 1, true);
  for (int i = 0; i < 3; i++) {
    conv("decoder.lateral_block" + std::to_string(4 - i) + ".conv", dec_out[i], ch[i + 1], 1, true);
    conv("decoder.gdt_convs_" + std::to_string(4 - i) + ".0", 16, dec_out[i], 3, true);
    bn("decoder.gdt_convs_" + std::to_string(4 - i) + ".1", 16);
    conv("decoder.gdt_convs_attn_" + std::to_string(4 - i) + ".0", 1, 16, 1, true);
  }
  return v;
}

bool write_weights(const std::string& path, int64_t embed) {
  const auto keys = birefnet_keys(embed);
  std::vector<bdr_tensor_spec> specs(keys.size());
  for (size_t i = 0; i < keys.size(); i++) {
    specs[i].key = keys[i].key.c_str();
    specs[i].dtype = keys[i].i64 ? "I64" : "F32";
    specs[i].ndim = int(keys[i].shape.size());
    for (size_t d = 0; d < keys[i].shape.size(); d++) specs[i].shape[d] = keys[i].shape[d];
    specs[i].fill = BDR_FILL_BDRAND;
  }
  char err[512] = {0};
  if (bdr_write_safetensors(path.c_str(), specs.data(), specs.size(), nullptr, err, sizeof err) != 0) {
    std::fprintf(stderr, "birefnet-bench: %s\n", err);
    return false;
  }
  return true;
}

// ---- the engine ----

std::string self_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = 0;
  std::string s(buf);
  return s.substr(0, s.find_last_of('/'));
}

double peak_rss_mb() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;
}

std::vector<int> parse_ints(const char* s) {
  std::vector<int> v;
  for (const char* p = s; *p;) {
    v.push_back(std::atoi(p));
    const char* c = std::strchr(p, ',');
    if (!c) break;
    p = c + 1;
  }
  return v;
}

struct Row {
  const char* name;
  const char* backbone;
  int size;
};

}  // namespace

int main(int argc, char** argv) {
  std::string engine_path, weights_t, weights_l, rows_arg = "lite512,lite1024,general512";
  std::vector<int> batches = {1, 4};
  int iters = 2, warmup = 1, threads = 0;
  bool cuda_only = false, no_cuda = false, keep_heap = true, cpu_bf16 = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) { std::fprintf(stderr, "%s needs a value\n", a.c_str()); std::exit(2); }
      return argv[++i];
    };
    if (a == "--engine") engine_path = next();
    else if (a == "--weights-t") weights_t = next();
    else if (a == "--weights-l") weights_l = next();
    else if (a == "--rows") rows_arg = next();
    else if (a == "--batches") batches = parse_ints(next());
    else if (a == "--iters") iters = std::max(1, std::atoi(next()));
    else if (a == "--warmup") warmup = std::max(0, std::atoi(next()));
    else if (a == "--threads") threads = std::atoi(next());
    else if (a == "--cuda-only") cuda_only = true;
    else if (a == "--no-cuda") no_cuda = true;
    else if (a == "--no-keep-heap") keep_heap = false;
    else if (a == "--cpu-bf16") cpu_bf16 = true;
    else {
      std::printf("usage: %s [--engine PATH] [--rows lite512,lite1024,general512] [--batches 1,4] [--iters N]\n"
                  "          [--warmup N] [--threads N] [--weights-t FILE] [--weights-l FILE] [--cuda-only] [--no-cuda]\n"
                  "          [--no-keep-heap] [--cpu-bf16]\n",
                  argv[0]);
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (engine_path.empty()) {
    const char* env = std::getenv("BACKDROP_ENGINE");
    engine_path = env && *env ? env : self_dir() + "/libbackdrop-torch.so";
  }
  // Idle OpenMP workers must not spin while OpenBLAS runs a GEMM on the same cores (measured on
  // 2 cores: lite 512^2 2.9 s -> 1.9 s per frame). libgomp reads this when libtorch loads, so it
  // is set before dlopen; an explicit user setting wins.
  setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
#if defined(__GLIBC__)
  // Large activations are otherwise mmap'ed and unmapped on every forward pass, and every page
  // is faulted in and zeroed again (lite 512^2 on 2 cores: ~2.8 -> ~2.4 s per frame).
  if (keep_heap) {
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, INT_MAX);
  }
#else
  keep_heap = false;
#endif
  bd_engine_api api;
  char load_err[512];
  if (bd_engine_api_load(engine_path.c_str(), &api, load_err, sizeof load_err) != 0) {
    std::fprintf(stderr, "%s\n", load_err);
    return 1;
  }
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  const int nthreads = threads > 0 ? threads : int(cores);
  const int gpus = api.cuda_device_count();
  std::printf("engine: %s (%s)\n", engine_path.c_str(), api.engine_version());
  std::printf("CPU threads: %d (of %ld cores); OMP_WAIT_POLICY=%s; heap kept (no mmap per tensor): %s; CUDA devices: %d;\n"
              "iterations %d after %d warm-up\n",
              nthreads, cores, std::getenv("OMP_WAIT_POLICY"), keep_heap ? "yes" : "no", gpus, iters, warmup);

  char tmpl[] = "/tmp/birefnet-bench-XXXXXX";
  std::string tmpdir;
  auto weights_for = [&](const char* backbone) -> std::string {
    std::string& given = std::string(backbone) == "swin_v1_t" ? weights_t : weights_l;
    // A given file is used; a given path that does not exist yet is where the weights are written
    // (so that other benchmarks, e.g. spatial-bench, can reuse them).
    if (!given.empty() && access(given.c_str(), F_OK) == 0) return given;
    if (given.empty()) {
      if (tmpdir.empty()) {
        if (!mkdtemp(tmpl)) { std::perror("mkdtemp"); std::exit(1); }
        tmpdir = tmpl;
      }
      given = tmpdir + "/bdrand_" + backbone + ".safetensors";
    }
    auto t0 = std::chrono::steady_clock::now();
    if (!write_weights(given, std::string(backbone) == "swin_v1_t" ? 96 : 192)) {
      std::fprintf(stderr, "cannot write %s\n", given.c_str());
      std::exit(1);
    }
    std::printf("generated bdrand weights %s in %.1f s\n", given.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return given;
  };

  const Row all_rows[] = {{"lite512", "swin_v1_t", 512}, {"lite1024", "swin_v1_t", 1024}, {"general512", "swin_v1_l", 512},
                          {"general1024", "swin_v1_l", 1024}, {"lite256", "swin_v1_t", 256}};
  std::vector<Row> rows;
  for (const auto& r : all_rows)
    if (("," + rows_arg + ",").find("," + std::string(r.name) + ",") != std::string::npos) rows.push_back(r);

  struct Dev { bd_device_kind kind; bd_precision prec; const char* label; };
  std::vector<Dev> devices;
  if (!cuda_only) {
    devices.push_back({BD_DEVICE_CPU, BD_PRECISION_FP32, "cpu fp32"});
    // BF16 on the CPU where the engine accepts it (native AVX512-BF16/AMX); compared with fp32 below.
    if (cpu_bf16) devices.push_back({BD_DEVICE_CPU, BD_PRECISION_BF16, "cpu bf16"});
  }
  if (!no_cuda && gpus > 0) {
    devices.push_back({BD_DEVICE_CUDA, BD_PRECISION_FP16, "cuda fp16"});
    devices.push_back({BD_DEVICE_CUDA, BD_PRECISION_BF16, "cuda bf16"});
  }
  if (!no_cuda && gpus == 0) std::printf("CUDA rows skipped: the engine reports no CUDA device\n");

  std::printf("\n%-12s %-10s %-10s %6s %5s %12s %10s %12s  %s\n", "row", "backbone", "device", "size", "batch", "ms/frame",
              "frames/s", "peak RSS MB", "vs fp32 on the same device: time ratio, IoU@0.5, max |dp|");
  // fp32 mattes and times of each (row, batch, device kind), to compare lower precisions with.
  std::map<std::string, std::pair<std::vector<uint8_t>, double>> reference;
  int failures = 0;
  for (const auto& dev : devices) {
    for (const auto& row : rows) {
      const std::string weights = weights_for(row.backbone);
      bd_model_options mo{};
      mo.path = weights.c_str();
      mo.device = dev.kind;
      mo.precision = dev.prec;
      mo.patch_order = BD_PATCH_ORDER_CURRENT;
      mo.threads = nthreads;
      bd_model* model = nullptr;
      char err[2048];
      if (api.model_open(&mo, &model, err, sizeof err) != BD_OK) {
        std::printf("%-12s %-10s %-10s  model: %s\n", row.name, row.backbone, dev.label, err);
        failures++;
        continue;
      }
      for (int batch : batches) {
        bd_session_config cfg{};
        cfg.width = row.size;
        cfg.height = row.size;
        cfg.input_format = BD_FORMAT_RGB;
        cfg.output_format = BD_FORMAT_GRAY8;
        cfg.input_full_range = 1;
        cfg.output_full_range = 1;
        cfg.inference_width = row.size;
        cfg.inference_height = row.size;
        cfg.max_batch = batch;
        bd_session* session = nullptr;
        if (api.session_create(model, &cfg, &session, err, sizeof err) != BD_OK) {
          std::printf("%-12s %-10s %-10s %6d %5d  session: %s\n", row.name, row.backbone, dev.label, row.size, batch, err);
          failures++;
          continue;
        }
        const size_t px = size_t(row.size) * size_t(row.size);
        std::vector<uint8_t> in(px * 3 * size_t(batch)), out(px * size_t(batch));
        for (size_t i = 0; i < in.size(); i++) in[i] = uint8_t((i * 2654435761u) >> 24);
        std::vector<bd_frame> fin(static_cast<size_t>(batch)), fout(static_cast<size_t>(batch));
        for (int b = 0; b < batch; b++) {
          fin[size_t(b)] = bd_frame{};
          fin[size_t(b)].planes[0] = in.data() + px * 3 * size_t(b);
          fin[size_t(b)].strides[0] = row.size * 3;
          fout[size_t(b)] = bd_frame{};
          fout[size_t(b)].planes[0] = out.data() + px * size_t(b);
          fout[size_t(b)].strides[0] = row.size;
        }
        bd_composite_params params{};
        params.threshold = 0.5f;
        params.soft = 1;
        bool ok = true;
        for (int w = 0; w < warmup && ok; w++)
          ok = api.session_process(session, fin.data(), fout.data(), batch, &params, err, sizeof err) == BD_OK;
        auto t0 = std::chrono::steady_clock::now();
        for (int it = 0; it < iters && ok; it++)
          ok = api.session_process(session, fin.data(), fout.data(), batch, &params, err, sizeof err) == BD_OK;
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!ok) {
          std::printf("%-12s %-10s %-10s %6d %5d  process: %s\n", row.name, row.backbone, dev.label, row.size, batch, err);
          failures++;
        } else {
          const double ms = secs * 1000.0 / double(iters * batch);
          std::printf("%-12s %-10s %-10s %6d %5d %12.1f %10.2f %12.0f", row.name, row.backbone, dev.label, row.size,
                      batch, ms, 1000.0 / ms, peak_rss_mb());
          const std::string key = std::string(row.name) + "/" + std::to_string(batch) + "/" + std::to_string(dev.kind);
          if (dev.prec == BD_PRECISION_FP32) {
            reference[key] = {out, ms};
          } else if (reference.count(key)) {
            const auto& [ref, ref_ms] = reference[key];
            size_t both = 0, either = 0;
            int max_diff = 0;
            for (size_t i = 0; i < out.size(); i++) {
              const bool a = out[i] >= 128, b = ref[i] >= 128;
              both += a && b;
              either += a || b;
              max_diff = std::max(max_diff, std::abs(int(out[i]) - int(ref[i])));
            }
            std::printf("  %.3f  %.4f  %.3f", ms / ref_ms, either ? double(both) / double(either) : 1.0, max_diff / 255.0);
          }
          std::printf("\n");
        }
        std::fflush(stdout);
        api.session_destroy(session);
      }
      api.model_release(model);
    }
  }
  if (!tmpdir.empty()) {
    for (const char* b : {"swin_v1_t", "swin_v1_l"}) std::remove((tmpdir + "/bdrand_" + b + ".safetensors").c_str());
    ::rmdir(tmpdir.c_str());
  }
  return failures ? 1 : 0;
}
