// Host <-> device transfers of one session (issue 14: the overlapped data path).
//
// On the CPU a transfer is one copy between the caller's planes and a contiguous batch tensor.
// On CUDA it goes through pinned host staging buffers that live as long as the session (no
// page-locked allocation per batch), on a copy stream of its own ordered against the session's
// compute stream by events, one frame at a time, so that:
//  - upload: the host copy of frame i+1 into staging overlaps the DMA of frame i to the device;
//    the compute stream waits for the last DMA only (not the host);
//  - download: the copy stream waits for the compute stream's event, then the DMA of frame i+1
//    overlaps the host copy of frame i from staging into the caller's (downstream) buffer.
// Two staging slots alternate, each guarded by the event of its last DMA, so the next batch's
// host copies never overwrite memory a DMA still reads.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <vector>

namespace bd {

class DeviceTransfer {
 public:
  explicit DeviceTransfer(c10::Device device);
  ~DeviceTransfer();
  DeviceTransfer(const DeviceTransfer&) = delete;
  DeviceTransfer& operator=(const DeviceTransfer&) = delete;

  // frames: host views [h,w,c] uint8 of equal shape (may be strided), or tensors already on the
  // device (CUDA memory in: stacked there). Returns [n,h,w,c] uint8 on the device, ready for work
  // on the current (compute) stream.
  at::Tensor upload(const std::vector<at::Tensor>& frames);
  // source: [n,h,w,c] uint8 on the device, computed on the current stream; destinations: one
  // host view [h,w,c] per frame. Returns when every destination holds its frame.
  void download(const at::Tensor& source, const std::vector<at::Tensor>& destinations);

 private:
  struct Cuda;  // streams, events and staging buffers; only in CUDA builds
  c10::Device device_;
  std::unique_ptr<Cuda> cuda_;
};

}  // namespace bd
