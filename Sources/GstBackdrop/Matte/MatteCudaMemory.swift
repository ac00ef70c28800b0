// birefnetmatte: CUDA memory in and out (issue 14). Caps with memory:CUDAMemory are offered, and
// preferred, only when the opened model runs on CUDA and the pipeline's GstCudaContext for that GPU
// is at hand; otherwise only system memory is. The gstcuda calls live in CBackdropShim/cuda_shim.c.
import BackdropEngineClient
import CBackdropEngineABI
import CBackdropShim
import CGStreamer

/// What the element knows about CUDA memory; guarded by its Mutex (queries come from any thread).
struct MatteCudaState {
  /// nil until the engine is started: then both memory kinds are offered, system memory first.
  var engineOnCuda: Bool? = nil
  /// The GstCudaContext (as its address, 0: none) shared with the pipeline, for the engine's GPU.
  var context: UInt = 0
  /// Why CUDA memory is not offered although the model runs on CUDA (no gstcuda, no context).
  var unavailable: String? = nil

  var offersCuda: Bool { engineOnCuda == true && context != 0 }
}

enum MatteMemory {
  static let cudaFeature = BD_CAPS_FEATURE_MEMORY_CUDA

  /// Whether the caps' first structure carries the CUDAMemory feature.
  static func isCuda(_ caps: UnsafeMutablePointer<GstCaps>?, index: UInt32 = 0) -> Bool {
    guard let caps, gst_caps_get_size(caps) > index, let features = gst_caps_get_features(caps, index) else { return false }
    return gst_caps_features_is_any(features) == 0 && gst_caps_features_contains(features, cudaFeature) != 0
  }

  /// Whether every structure of `caps` asks for CUDA memory (a downstream that takes nothing else).
  static func onlyCuda(_ caps: UnsafeMutablePointer<GstCaps>?) -> Bool {
    guard let caps, gst_caps_is_any(caps) == 0, gst_caps_get_size(caps) > 0 else { return false }
    return (0..<gst_caps_get_size(caps)).allSatisfy { isCuda(caps, index: $0) }
  }

  static func setCuda(_ caps: UnsafeMutablePointer<GstCaps>) {
    for index in 0..<gst_caps_get_size(caps) {
      gst_caps_set_features(caps, index, gst_caps_features_from_string(cudaFeature))
    }
  }
}

/// The GstCudaContext offered at NULL→READY (as its address, 0: none) and its GPU.
struct MatteReadyContext {
  var context: UInt = 0
  var deviceIndex: Int32 = -1
}

extension MatteElement {
  /// At NULL→READY, when the model will run on CUDA (device=cuda[:N], or auto with an engine that
  /// has CUDA and sees a GPU: then cuda:0): offer the pipeline a CUDA context on libtorch's own
  /// (primary) context of that GPU, before an upstream decoder, whose NULL→READY comes after ours,
  /// makes a context of its own; its frames are then in the context the engine reads them in.
  /// Failures here are not reported: start() loads the engine again and says what is wrong.
  func offerCudaContext() {
    let current = settings.withLock { $0 }
    guard var (kind, index) = parseDevice(current.device) else { return }
    if kind == BD_DEVICE_AUTO,
      let library = try? EngineLibrary.load(explicitPath: current.engineLibrary, besideFile: pluginFilePath()),
      library.cudaDeviceCount() > 0
    {
      (kind, index) = (BD_DEVICE_CUDA, 0)
    }
    guard kind == BD_DEVICE_CUDA else { return }
    var why: UnsafePointer<CChar>? = nil
    guard let context = bd_cuda_share_primary_context(element, index, &why) else {
      matteDebug.info(object, "no CUDA context offered at READY: \(why.map { String(cString: $0) } ?? "unknown")")
      return
    }
    matteDebug.info(object, "CUDA context for cuda:\(index) offered to the pipeline")
    let previous = readyCudaContext.withLock { ready in
      defer { ready = MatteReadyContext(context: UInt(bitPattern: context), deviceIndex: index) }
      return ready.context
    }
    unrefContext(previous)
  }

  func releaseReadyCudaContext() {
    unrefContext(readyCudaContext.withLock { ready in
      defer { ready = MatteReadyContext() }
      return ready.context
    })
  }

  private func unrefContext(_ context: UInt) {
    if context != 0, let pointer = UnsafeMutableRawPointer(bitPattern: context) { gst_object_unref(pointer) }
  }

  /// After the model opened: on CUDA, find or make the pipeline's CUDA context for its GPU (the one
  /// offered at READY when it is for that GPU).
  func startCudaMemory(_ info: bd_model_info) {
    var state = MatteCudaState()
    state.engineOnCuda = info.device == BD_DEVICE_CUDA
    if info.device == BD_DEVICE_CUDA {
      var why: UnsafePointer<CChar>? = nil
      let ready = readyCudaContext.withLock { $0 }
      if bd_cuda_library_available(&why) == 0 {
        state.unavailable = why.map { String(cString: $0) } ?? "gstcuda is unavailable"
      } else if ready.context != 0, ready.deviceIndex == info.device_index,
        let pointer = UnsafeMutableRawPointer(bitPattern: ready.context)
      {
        state.context = UInt(bitPattern: gst_object_ref(pointer))
      } else if let context = bd_cuda_share_primary_context(element, info.device_index, nil)
        ?? bd_cuda_context_for_device(element, info.device_index)
      {
        state.context = UInt(bitPattern: context)
      } else {
        state.unavailable = "no GstCudaContext could be made for cuda:\(info.device_index)"
      }
      if let reason = state.unavailable {
        matteDebug.info(object, "CUDA memory not offered: \(reason); frames pass through system memory")
      }
    }
    cuda.withLock { $0 = state }
  }

  func stopCudaMemory() {
    let context = cuda.withLock { state -> UInt in
      let context = state.context
      state = MatteCudaState()
      return context
    }
    unrefContext(context)
  }

  /// The memory kinds this element offers, in order of preference (true: CUDA memory).
  func offeredMemories() -> [Bool] {
    let state = cuda.withLock { $0 }
    guard let onCuda = state.engineOnCuda else { return [false, true] }
    return onCuda && state.offersCuda ? [true, false] : [false]
  }

  /// A pad's caps in order of preference: its template's formats in each memory offered.
  func offeredCaps(_ pad: UnsafeMutablePointer<GstPad>) -> UnsafeMutablePointer<GstCaps> {
    let formats = pad == sinkPad ? MatteFormats.sinkFormats : MatteFormats.sourceFormats
    let caps = gst_caps_new_empty()!
    for cudaMemory in offeredMemories() {
      gst_caps_append(caps, makeCaps(rawVideoCapsString(formats, feature: cudaMemory ? MatteMemory.cudaFeature : nil)))
    }
    return caps
  }

  /// Answers a CUDA context query with the element's context, if it has one.
  func answerContextQuery(_ query: UnsafeMutablePointer<GstQuery>) -> Bool {
    let context = cuda.withLock { $0.context }
    guard context != 0, let pointer = UnsafeMutableRawPointer(bitPattern: context) else { return false }
    return bd_cuda_answer_context_query(element, query, pointer.assumingMemoryBound(to: GstObject.self)) != 0
  }

  /// Why caps in CUDA memory cannot be taken or written, for the negotiation ERROR.
  func cudaRefusal() -> String {
    let (state, description) = (cuda.withLock { $0 }, shared.withLock { $0.modelDescription ?? "" })
    if state.engineOnCuda == true {
      return "this one does (\(description)) but \(state.unavailable ?? "CUDA memory is unavailable")"
    }
    return "this one runs on the CPU (\(description)); use device=cuda on a machine with an NVIDIA GPU and an "
      + "engine built with CUDA, or convert to system memory (cudadownload before it, cudaupload after it)"
  }

  /// An output buffer pool in CUDA memory for `caps`, from the shared context.
  func makeCudaOutputPool(_ caps: UnsafeMutablePointer<GstCaps>, size: UInt) -> UnsafeMutablePointer<GstBufferPool>? {
    let context = cuda.withLock { $0.context }
    guard context != 0, let pointer = UnsafeMutableRawPointer(bitPattern: context) else { return nil }
    return bd_cuda_buffer_pool_new(pointer.assumingMemoryBound(to: GstObject.self), caps, guint(size))
  }
}

func releasePool(_ pool: UnsafeMutablePointer<GstBufferPool>?) {
  guard let pool else { return }
  gst_buffer_pool_set_active(pool, 0)
  gst_object_unref(pool)
}
