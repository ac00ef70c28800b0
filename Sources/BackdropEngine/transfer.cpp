#include "transfer.h"

#include <stdexcept>

#if defined(BD_WITH_CUDA)
#include <c10/core/Event.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace bd {

#if defined(BD_WITH_CUDA)
namespace {

// A pinned host buffer reused across batches; `done` is recorded after the last DMA that reads
// or writes it, and waited for before the host touches it again.
// (c10::Event, not ATen's CUDAEvent: that header needs CUDA's C++ library headers, which a torch
// wheel does not bring; c10's event reaches CUDA through libc10_cuda.)
struct StagingSlot {
  at::Tensor host;  // flat uint8, page-locked
  c10::Event done{c10::DeviceType::CUDA};

  at::Tensor take(int64_t bytes) {
    done.synchronize();  // a no-op when the event was never recorded
    if (!host.defined() || host.numel() < bytes) {
      // Grown only when a batch is larger than any before (caps change, bigger batch).
      host = at::empty({bytes}, at::TensorOptions().dtype(at::kByte).pinned_memory(true));
    }
    return host.narrow(0, 0, bytes);
  }
};

}  // namespace

struct DeviceTransfer::Cuda {
  c10::cuda::CUDAStream copy_stream;
  StagingSlot up[2], down[2];
  int next_up = 0, next_down = 0;
  // Reused across batches (re-recording an event is allowed): no event is made per frame.
  c10::Event computed{c10::DeviceType::CUDA};
  std::vector<c10::Event> arrived;

  explicit Cuda(c10::DeviceIndex index) : copy_stream(c10::cuda::getStreamFromPool(/*isHighPriority=*/true, index)) {}
};
#else
struct DeviceTransfer::Cuda {};
#endif

DeviceTransfer::DeviceTransfer(c10::Device device) : device_(device) {
#if defined(BD_WITH_CUDA)
  if (device_.is_cuda()) cuda_ = std::make_unique<Cuda>(device_.index());
#endif
}

DeviceTransfer::~DeviceTransfer() = default;

at::Tensor DeviceTransfer::upload(const std::vector<at::Tensor>& frames) {
  if (frames.empty()) throw std::invalid_argument("upload of no frames");
  // The CPU, or frames already on the device (CUDA memory in): one copy into the batch tensor.
  if (!cuda_ || frames[0].is_cuda()) return at::stack(frames).to(device_);
#if defined(BD_WITH_CUDA)
  const auto shape = frames[0].sizes();
  const int64_t per_frame = frames[0].numel(), n = static_cast<int64_t>(frames.size());
  std::vector<int64_t> batch_shape{n};
  batch_shape.insert(batch_shape.end(), shape.begin(), shape.end());
  auto compute = c10::cuda::getCurrentCUDAStream(device_.index());
  // Allocated for the compute stream; the copy stream only writes it before compute waits for it.
  auto device_batch = at::empty(batch_shape, at::TensorOptions().dtype(at::kByte).device(device_));
  auto& slot = cuda_->up[cuda_->next_up];
  cuda_->next_up ^= 1;
  auto staging = slot.take(per_frame * n).view(batch_shape);
  {
    c10::cuda::CUDAStreamGuard guard(cuda_->copy_stream);
    for (int64_t i = 0; i < n; ++i) {
      staging[i].copy_(frames[static_cast<size_t>(i)]);           // host: caller's planes → pinned
      device_batch[i].copy_(staging[i], /*non_blocking=*/true);  // DMA, while the host copies the next
    }
    slot.done.record(cuda_->copy_stream);
  }
  slot.done.block(compute);  // compute waits on the device, the host goes on
  return device_batch;
#else
  return at::Tensor();
#endif
}

void DeviceTransfer::download(const at::Tensor& source, const std::vector<at::Tensor>& destinations) {
  const int64_t n = static_cast<int64_t>(destinations.size());
  if (source.size(0) != n) throw std::invalid_argument("download: frame count differs from the destinations");
  if (!cuda_) {
    auto host = source.to(at::kCPU);
    for (int64_t i = 0; i < n; ++i) destinations[static_cast<size_t>(i)].copy_(host[i]);
    return;
  }
#if defined(BD_WITH_CUDA)
  auto contiguous = source.contiguous();
  const int64_t per_frame = contiguous[0].numel();
  auto compute = c10::cuda::getCurrentCUDAStream(device_.index());
  auto& computed = cuda_->computed;
  computed.record(compute);
  auto& slot = cuda_->down[cuda_->next_down];
  cuda_->next_down ^= 1;
  auto staging = slot.take(per_frame * n).view(contiguous.sizes());
  auto& arrived = cuda_->arrived;
  while (static_cast<int64_t>(arrived.size()) < n) arrived.emplace_back(c10::DeviceType::CUDA);
  {
    c10::cuda::CUDAStreamGuard guard(cuda_->copy_stream);
    computed.block(cuda_->copy_stream);
    // The source was allocated on the compute stream and is read here on the copy stream: tell
    // the caching allocator, so its memory is not handed out again before the DMA is done.
    c10::cuda::CUDACachingAllocator::recordStream(contiguous.storage().data_ptr(), cuda_->copy_stream);
    for (int64_t i = 0; i < n; ++i) {
      staging[i].copy_(contiguous[i], /*non_blocking=*/true);
      arrived[static_cast<size_t>(i)].record(cuda_->copy_stream);
    }
    slot.done.record(cuda_->copy_stream);
  }
  for (int64_t i = 0; i < n; ++i) {
    arrived[static_cast<size_t>(i)].synchronize();             // frame i is in staging
    destinations[static_cast<size_t>(i)].copy_(staging[i]);  // into the downstream buffer, while i+1 is in flight
  }
#endif
}

}  // namespace bd
