// birefnetmatte: frames in, batches through the engine, frames out in order.
import BackdropEngineClient
import CBackdropEngineABI
import CBackdropShim
import CGStreamer

extension MatteElement {
  // MARK: data flow

  func chain(_ buffer: UnsafeMutablePointer<GstBuffer>) -> GstFlowReturn {
    guard stream.session != nil else {
      gst_buffer_unref(buffer)
      postError(element, .core, code: Int32(GST_CORE_ERROR_NEGOTIATION.rawValue),
                "birefnetmatte received a buffer before caps were negotiated.")
      return GST_FLOW_NOT_NEGOTIATED
    }
    if gst_pad_check_reconfigure(srcPad) != 0, let caps = stream.inputCaps {
      let flow = finishPending()
      if flow != GST_FLOW_OK && flow != GST_FLOW_NOT_LINKED { gst_buffer_unref(buffer); return flow }
      gst_caps_ref(caps)
      defer { gst_caps_unref(caps) }
      if !configure(caps) {
        gst_pad_mark_reconfigure(srcPad)
        gst_buffer_unref(buffer)
        return GST_FLOW_NOT_NEGOTIATED
      }
    }
    if stream.failed {
      gst_buffer_unref(buffer)
      return GST_FLOW_ERROR  // the inference ERROR was posted once; the stream is over
    }
    let lastFlow = stream.lastFlow  // read once: the inference task may change it
    if lastFlow != GST_FLOW_OK {
      // A push from a drain, the batch timeout or the inference task failed: tell upstream now.
      gst_buffer_unref(buffer)
      return lastFlow
    }
    if isTooLate(buffer) {
      gst_buffer_unref(buffer)
      return GST_FLOW_OK
    }
    if (buffer.pointee.mini_object.flags & GST_BUFFER_FLAG_DISCONT.rawValue) != 0 {
      // Nothing before a discontinuity may shape the mattes after it: finish the held frames
      // with the old state, then start the temporal state afresh (issue 9).
      let flow = finishPending()
      if flow != GST_FLOW_OK {
        gst_buffer_unref(buffer)
        return flow
      }
      stream.session?.reset()
    }
    stream.pending.append(buffer)
    if stream.pending.count >= stream.batchSize {
      return submitPending()
    }
    if stream.pending.count == 1 { armBatchTimeout() }
    return GST_FLOW_OK
  }

  /// Hands the held frames on as one batch without waiting for them: to the inference task when
  /// there is one (waiting only for room in its queue), else runs them here.
  func submitPending() -> GstFlowReturn {
    guard let inferenceQueue else { return processPending() }
    cancelBatchTimeout()
    let inputs = stream.pending
    stream.pending.removeAll()
    guard !inputs.isEmpty else { return GST_FLOW_OK }
    return inferenceQueue.submit(MatteBatch(buffers: inputs)) ? stream.lastFlow : GST_FLOW_FLUSHING
  }

  /// Runs the held frames through the engine as one batch and pushes them in order; with an
  /// inference task, returns once it has pushed them and every batch queued before them
  /// (serialized events, caps changes and DISCONT wait for this).
  func processPending() -> GstFlowReturn {
    cancelBatchTimeout()
    let inputs = stream.pending
    stream.pending.removeAll()
    if let inferenceQueue {
      // The flow of pushes upstream has not heard of yet; an idle queue has none.
      let hadWork = !inputs.isEmpty || inferenceQueue.hasWork
      if !inputs.isEmpty && !inferenceQueue.submit(MatteBatch(buffers: inputs)) { return GST_FLOW_FLUSHING }
      inferenceQueue.drain()
      return hadWork ? stream.lastFlow : GST_FLOW_OK
    }
    guard !inputs.isEmpty else { return GST_FLOW_OK }
    return processBatch(inputs)
  }

  /// Runs one batch through the engine and pushes its frames in order (on the inference task, or
  /// on the streaming thread with inference-queue=0).
  func processBatch(_ inputs: [UnsafeMutablePointer<GstBuffer>]) -> GstFlowReturn {
    guard let session = stream.session else {
      inputs.forEach { gst_buffer_unref($0) }
      return GST_FLOW_NOT_NEGOTIATED
    }
    let current = settings.withLock { $0 }
    if current.background == BD_MATTE_BACKGROUND_IMAGE && !prepareBackgroundImage(current.backgroundImage, fit: current.backgroundFit, session) {
      inputs.forEach { gst_buffer_unref($0) }
      return GST_FLOW_ERROR
    }
    let started = g_get_monotonic_time()
    let outputs: [UnsafeMutablePointer<GstBuffer>]
    do {
      outputs = try runEngine(session, inputs, current.compositeParams)
    } catch {
      inputs.forEach { gst_buffer_unref($0) }
      if !stream.failed {
        postError(element, .stream, code: StreamError.failed, "Inference failed: \(error.message)")
      }
      stream.failed = true
      stream.lastFlow = GST_FLOW_ERROR
      return GST_FLOW_ERROR
    }
    inputs.forEach { gst_buffer_unref($0) }
    reportModelOutput(session, current)
    recordProcessingTime(UInt(g_get_monotonic_time() - started) * 1000, frames: outputs.count)

    var flow = GST_FLOW_OK
    for output in outputs {
      if flow != GST_FLOW_OK {
        gst_buffer_unref(output)
        continue
      }
      flow = gst_pad_push(srcPad, output)
    }
    stream.lastFlow = flow
    return flow
  }

  /// After a batch: the counters for the stats property, and the warnings about what the model
  /// returned.
  func reportModelOutput(_ session: EngineSession, _ current: MatteSettings) {
    let stats = recordSessionStats(session)
    reportNaN(stats, modelFile: current.modelFile)
    if current.modelOutput == BD_MATTE_MODEL_OUTPUT_LOGITS { reportProbabilityLikeOutput(stats, modelFile: current.modelFile) }
  }

  /// One WARNING per stream when the model gave NaN (the engine counts them and makes them
  /// background): a matte with holes and no word would look like a bad model, not a broken one.
  func reportNaN(_ stats: bd_session_stats, modelFile: String?) {
    guard !stream.nanReported else { return }
    guard stats.nan_pixels > 0 else { return }
    stream.nanReported = true
    postWarning(
      element, .stream, code: StreamError.decode,
      "model-file \(modelFile ?? "?") gave NaN (not a number) for \(stats.nan_pixels) pixel(s) in "
        + "\(stats.nan_frames) of \(stats.frames) frame(s) so far; they are treated as background. "
        + "The model is broken or overflows at this precision (try precision=fp32).",
      debug: "pixels are counted at the inference size, where the model answers")
  }

  /// One WARNING per stream when every frame the model ran on so far gave values within 0-1 only:
  /// read as logits that is "unsure foreground" everywhere (the hard matte keeps the whole frame),
  /// which is what a model that ends with its own sigmoid (MODNet, U²-Net exports) gives.
  func reportProbabilityLikeOutput(_ stats: bd_session_stats, modelFile: String?) {
    guard !stream.probabilityLikeReported else { return }
    guard stats.frames_inferred > 0, stats.frames_unit_range == stats.frames_inferred else { return }
    stream.probabilityLikeReported = true
    postWarning(
      element, .stream, code: StreamError.decode,
      "model-file \(modelFile ?? "?") returned values between 0 and 1 only, in all \(stats.frames_inferred) "
        + "frame(s) so far: read as logits (model-output=logits), every pixel is unsure foreground. "
        + "If the model ends with a sigmoid, set model-output=probability.",
      debug: "the contract is logits [B,1,H,W]; a logit of 0-1 is a probability of 0.50-0.73")
  }

  struct ProcessError: Error { let message: String }

  /// Maps the frames, lets the engine write straight into newly allocated output buffers and
  /// copies timestamps and flags across. With temporal-lookahead the outputs are one frame late
  /// (MatteLookahead.swift): the held frame's and all but the newest input's.
  func runEngine(
    _ session: EngineSession, _ inputs: [UnsafeMutablePointer<GstBuffer>], _ params: bd_composite_params
  ) throws(ProcessError) -> [UnsafeMutablePointer<GstBuffer>] {
    let count = inputs.count
    let inFrames = UnsafeMutablePointer<GstVideoFrame>.allocate(capacity: count)
    let outFrames = UnsafeMutablePointer<GstVideoFrame>.allocate(capacity: count)
    defer {
      inFrames.deallocate()
      outFrames.deallocate()
    }
    var outputs: [UnsafeMutablePointer<GstBuffer>] = []
    var mappedIn = 0
    var mappedOut = 0
    defer {
      for i in 0..<mappedIn { gst_video_frame_unmap(inFrames + i) }
      for i in 0..<mappedOut { gst_video_frame_unmap(outFrames + i) }
    }
    var engineInputs: [bd_frame] = []
    var engineOutputs: [bd_frame] = []
    // CUDA memory (issue 14) is mapped as device pointers, which the engine reads and writes on the GPU.
    let cudaMap = bd_cuda_map_flag().rawValue
    let inputFlags = GstMapFlags(rawValue: GST_MAP_READ.rawValue | (stream.inputCuda ? cudaMap : 0))
    let outputFlags = GstMapFlags(rawValue: GST_MAP_WRITE.rawValue | (stream.outputPool != nil ? cudaMap : 0))
    for input in inputs {
      if stream.inputCuda && bd_cuda_buffer_is_device(input) == 0 {
        outputs.forEach { gst_buffer_unref($0) }
        throw ProcessError(message: "an input buffer is not CUDA memory although the caps say memory:CUDAMemory")
      }
      // The engine reads it on its own stream: the producer's queued work on the memory's stream
      // (GStreamer >= 1.24) must be done first.
      if stream.inputCuda { _ = bd_cuda_buffer_sync(input) }
      inFrames[mappedIn] = GstVideoFrame()
      guard gst_video_frame_map(inFrames + mappedIn, &stream.inputInfo, input, inputFlags) != 0 else {
        throw ProcessError(message: "cannot map an input buffer as \(formatName(stream.inputInfo))")
      }
      mappedIn += 1
      engineInputs.append(engineFrame(inFrames[mappedIn - 1]))
    }
    for source in outputSources(for: inputs) {
      guard let output = allocateOutput() else {
        outputs.forEach { gst_buffer_unref($0) }
        throw ProcessError(message: "cannot allocate an output buffer in CUDA memory (the buffer pool is empty or inactive)")
      }
      gst_buffer_copy_into(output, source, GstBufferCopyFlags(rawValue: GST_BUFFER_COPY_FLAGS.rawValue | GST_BUFFER_COPY_TIMESTAMPS.rawValue), 0, UInt.max)
      outputs.append(output)
      outFrames[mappedOut] = GstVideoFrame()
      guard gst_video_frame_map(outFrames + mappedOut, &stream.outputInfo, output, outputFlags) != 0 else {
        outputs.forEach { gst_buffer_unref($0) }
        throw ProcessError(message: "cannot map an output buffer")
      }
      mappedOut += 1
      engineOutputs.append(engineFrame(outFrames[mappedOut - 1]))
    }
    do {
      try session.process(inputs: engineInputs, outputs: engineOutputs, params: params)
    } catch {
      outputs.forEach { gst_buffer_unref($0) }
      dropHeld()  // the engine dropped its held frame too
      throw ProcessError(message: error.message)
    }
    holdNewest(of: inputs)
    return outputs
  }

  /// A buffer for one output frame: from the CUDA pool when the output is in CUDA memory.
  func allocateOutput() -> UnsafeMutablePointer<GstBuffer>? {
    guard let pool = stream.outputPool else { return gst_buffer_new_allocate(nil, stream.outputInfo.size, nil) }
    var buffer: UnsafeMutablePointer<GstBuffer>? = nil
    guard gst_buffer_pool_acquire_buffer(pool, &buffer, nil) == GST_FLOW_OK else { return nil }
    return buffer
  }

  func engineFrame(_ frame: GstVideoFrame) -> bd_frame {
    var result = bd_frame()
    result.planes = (
      frame.data.0?.assumingMemoryBound(to: UInt8.self), frame.data.1?.assumingMemoryBound(to: UInt8.self),
      frame.data.2?.assumingMemoryBound(to: UInt8.self), frame.data.3?.assumingMemoryBound(to: UInt8.self)
    )
    result.strides = (frame.info.stride.0, frame.info.stride.1, frame.info.stride.2, frame.info.stride.3)
    return result
  }

  func prepareBackgroundImage(_ path: String?, fit: BdMatteBackgroundFit, _ session: EngineSession) -> Bool {
    guard let path, !path.isEmpty else {
      postError(element, .resource, code: ResourceError.settings,
                "background=image needs the background-image property: set it to an image file.")
      return false
    }
    let width = Int(stream.inputInfo.width)
    let height = Int(stream.inputInfo.height)
    let key = "\(path)@\(width)x\(height)/\(fit.rawValue)"
    if stream.backgroundImageKey == key { return true }
    do {
      let image = try decodeBackgroundImage(path: path, width: width, height: height, fit: fit)
      try image.pixels.withUnsafeBufferPointer {
        try session.setBackgroundImage(rgb: $0.baseAddress!, stride: Int32(image.stride),
                                       width: Int32(width), height: Int32(height))
      }
      stream.backgroundImageKey = key
      return true
    } catch let error as BackgroundImageError {
      postError(element, .resource, code: ResourceError.read, error.message)
    } catch let error as EngineCallError {
      postError(element, .resource, code: ResourceError.failed, "background-image \"\(path)\": \(error.message)")
    } catch {
      postError(element, .resource, code: ResourceError.failed, "background-image \"\(path)\": \(error)")
    }
    return false
  }

  /// Forgets the frames waiting for a batch and the frame held by temporal-lookahead (the caller
  /// resets or replaces the engine session: FLUSH, stop).
  func dropPending() {
    stream.pending.forEach { gst_buffer_unref($0) }
    stream.pending.removeAll()
    dropHeld()
  }
}
