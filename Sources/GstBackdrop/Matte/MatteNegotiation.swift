// birefnetmatte: choosing the output format, caps queries, (re)creating the engine session.
import BackdropEngineClient
import CBackdropEngineABI
import CBackdropShim
import CGStreamer

extension MatteElement {
  // MARK: caps

  /// Chooses the output format, tells downstream, and (re)creates the engine session.
  func configure(_ caps: UnsafeMutablePointer<GstCaps>) -> Bool {
    if let refused = stream.refusedCaps, gst_caps_is_equal(refused, caps) != 0 {
      return false  // the ERROR for these caps is on the bus already
    }
    var inputInfo = GstVideoInfo()
    guard gst_video_info_from_caps(&inputInfo, caps) != 0,
      let inputFormat = MatteFormats.engineFormat(inputInfo.finfo.pointee.format)
    else {
      postError(element, .core, code: Int32(GST_CORE_ERROR_NEGOTIATION.rawValue),
                "birefnetmatte cannot take caps \(capsDescription(caps)).")
      return false
    }
    let inputCuda = MatteMemory.isCuda(caps)
    if inputCuda && !offeredMemories().contains(true) {
      postError(element, .core, code: Int32(GST_CORE_ERROR_NEGOTIATION.rawValue),
                "birefnetmatte takes frames in CUDA memory (video/x-raw(memory:CUDAMemory)) only when its model "
                  + "runs on CUDA: \(cudaRefusal()).")
      return false
    }
    warnIfInterlaced(inputInfo)
    let current = settings.withLock { $0 }
    guard let (outputCaps, outputInfo) = chooseOutput(inputInfo, background: current.background) else {
      let downstream = gst_pad_peer_query_caps(srcPad, nil)
      defer { if let downstream { gst_caps_unref(downstream) } }
      if MatteMemory.onlyCuda(downstream) && !offeredMemories().contains(true) {
        postError(element, .core, code: Int32(GST_CORE_ERROR_NEGOTIATION.rawValue),
                  "birefnetmatte writes CUDA memory (video/x-raw(memory:CUDAMemory)), which downstream asks for, "
                    + "only when its model runs on CUDA: \(cudaRefusal()).")
        return false
      }
      postError(element, .core, code: Int32(GST_CORE_ERROR_NEGOTIATION.rawValue),
                "birefnetmatte can write none of the formats downstream accepts "
                  + "(it writes \(MatteFormats.sourceFormats.joined(separator: ", "))); downstream accepts \(capsDescription(downstream)).")
      return false
    }
    defer { gst_caps_unref(outputCaps) }
    if stream.session != nil, let current = stream.inputCaps, gst_caps_is_equal(current, caps) != 0,
      let negotiated = gst_pad_get_current_caps(srcPad)
    {
      // A reconfigure that changes nothing keeps the session (and its buffers).
      defer { gst_caps_unref(negotiated) }
      if gst_caps_is_equal(negotiated, outputCaps) != 0 { return true }
    }
    if gst_pad_push_event(srcPad, gst_event_new_caps(outputCaps)) == 0 {
      matteDebug.warning(object, "downstream refused \(capsDescription(outputCaps))")
      return false
    }
    let outputInfoVar = outputInfo
    let live = upstreamIsLive()
    var config = bd_session_config()
    config.width = inputInfo.width
    config.height = inputInfo.height
    config.input_format = inputFormat
    config.output_format = MatteFormats.engineFormat(outputInfoVar.finfo.pointee.format)!
    config.input_matrix = MatteFormats.matrix(inputInfo)
    config.input_full_range = MatteFormats.isFullRange(inputInfo) ? 1 : 0
    config.output_matrix = MatteFormats.matrix(outputInfoVar)
    config.output_full_range = MatteFormats.isFullRange(outputInfoVar) ? 1 : 0
    // CUDA memory (issue 14): device planes in and out; the engine orders the work on its own stream
    // and returns when the frames are written (gstcuda 1.22 buffers carry no stream).
    let outputCuda = MatteMemory.isCuda(outputCaps)
    config.input_memory = inputCuda ? BD_MEMORY_CUDA : BD_MEMORY_SYSTEM
    config.output_memory = outputCuda ? BD_MEMORY_CUDA : BD_MEMORY_SYSTEM
    var outputPool: UnsafeMutablePointer<GstBufferPool>? = nil
    if outputCuda {
      outputPool = makeCudaOutputPool(outputCaps, size: outputInfoVar.size)
      if outputPool == nil {
        postError(element, .resource, code: ResourceError.failed,
                  "birefnetmatte cannot allocate CUDA memory for \(capsDescription(outputCaps)) (the CUDA buffer pool "
                    + "refused it); let downstream take system memory.")
        return false
      }
    }
    guard let model else { releasePool(outputPool); return false }
    // The size a model file says it prefers wins over the default, not over a size that was set.
    if !current.inferenceSizeWasSet && model.info.native_width > 0 && model.info.native_height > 0 {
      config.inference_width = model.info.native_width
      config.inference_height = model.info.native_height
    } else {
      config.inference_width = Int32(current.inferenceWidth)
      config.inference_height = Int32(current.inferenceHeight)
    }
    let batchSize = current.effectiveBatchSize(live: live)
    config.max_batch = Int32(batchSize)
    config.temporal_lookahead = current.temporalLookahead ? 1 : 0
    config.model_output = bd_model_output(rawValue: current.modelOutput.rawValue)
    do {
      if stream.session != nil { closeSessionStats() }
      dropHeld()  // drained before a caps change; a new session holds nothing
      stream.session = nil  // free the old session's buffers first
      stream.session = try EngineSession(model: model, config: config)
    } catch {
      // A model that breaks the contract is a bad model file (RESOURCE OPEN_READ, as when it
      // cannot be loaded); other refusals are about the settings (size, format).
      let code = error.status == BD_ERR_MODEL ? ResourceError.openRead : ResourceError.settings
      releasePool(outputPool)
      postError(element, .resource, code: code, error.message)
      if let refused = stream.refusedCaps { gst_caps_unref(refused) }
      stream.refusedCaps = gst_caps_ref(caps)
      return false
    }
    if let old = stream.inputCaps { gst_caps_unref(old) }
    stream.inputCaps = gst_caps_ref(caps)
    stream.inputInfo = inputInfo
    stream.outputInfo = outputInfoVar
    stream.inputCuda = inputCuda
    releasePool(stream.outputPool)
    stream.outputPool = outputPool
    stream.batchSize = batchSize
    stream.lookahead = current.temporalLookahead
    stream.backgroundImageKey = nil
    if stream.lastFlow == GST_FLOW_NOT_NEGOTIATED { stream.lastFlow = GST_FLOW_OK }
    let frameDuration: UInt =
      inputInfo.fps_n > 0 ? gst_util_uint64_scale_int(1_000_000_000, inputInfo.fps_d, inputInfo.fps_n) : 0
    shared.withLock {
      $0.live = live
      $0.frameDuration = frameDuration
      $0.batchSize = batchSize
    }
    matteDebug.info(object, "\(capsDescription(caps)) -> \(capsDescription(outputCaps)), batch \(batchSize)\(live ? " (live)" : "")")
    return true
  }

  /// Interlaced frames hold two moments woven line by line: the model sees combs on every moving
  /// edge and mattes them. The element passes such video through as it is (the output keeps its
  /// interlacing and field order), and says once per stream what to put in front of it.
  func warnIfInterlaced(_ input: GstVideoInfo) {
    guard input.interlace_mode != GST_VIDEO_INTERLACE_MODE_PROGRESSIVE, !stream.warnedInterlaced else { return }
    stream.warnedInterlaced = true
    let mode = String(cString: gst_video_interlace_mode_to_string(input.interlace_mode))
    // mixed: each frame says whether it is interlaced (many progressive streams are labelled so).
    let what = input.interlace_mode == GST_VIDEO_INTERLACE_MODE_MIXED
      ? "video that may be interlaced (interlace-mode mixed): in frames flagged interlaced"
      : "interlaced video (interlace-mode \(mode)):"
    postWarning(element, .stream, code: StreamError.format,
                "birefnetmatte got \(what) the model sees both fields woven together, "
                  + "so moving edges comb in the matte. Put deinterlace method=greedyl fields=top before birefnetmatte.")
  }

  /// The first output format in order of preference that downstream accepts, in the first memory
  /// offered that it accepts (CUDA memory first when the model runs on CUDA).
  func chooseOutput(_ input: GstVideoInfo, background: BdMatteBackground)
    -> (UnsafeMutablePointer<GstCaps>, GstVideoInfo)?
  {
    let downstream = gst_pad_peer_query_caps(srcPad, nil)
    defer { if let downstream { gst_caps_unref(downstream) } }
    let inputName = formatName(input)
    for cudaMemory in offeredMemories() {
    for name in MatteFormats.preferredOutputs(input: inputName, background: background) {
      var info = GstVideoInfo()
      let format = gst_video_format_from_string(name)
      guard gst_video_info_set_format(&info, format, UInt32(input.width), UInt32(input.height)) != 0 else { continue }
      info.fps_n = input.fps_n
      info.fps_d = input.fps_d
      info.par_n = input.par_n
      info.par_d = input.par_d
      info.interlace_mode = input.interlace_mode
      info.ABI.abi.field_order = input.ABI.abi.field_order  // else a player weaves the fields in the wrong order
      if MatteFormats.isYUV(name) && MatteFormats.isYUV(inputName) {
        info.colorimetry = input.colorimetry
        info.chroma_site = input.chroma_site
      }
      guard let caps = gst_video_info_to_caps(&info) else { continue }
      if cudaMemory { MatteMemory.setCuda(caps) }
      if downstream == nil || gst_caps_can_intersect(caps, downstream) != 0 {
        return (caps, info)
      }
      gst_caps_unref(caps)
    }
    }
    return nil
  }

  func upstreamIsLive() -> Bool {
    guard let query = gst_query_new_latency() else { return false }
    defer { gst_query_unref(query) }
    guard gst_pad_peer_query(sinkPad, query) != 0 else { return false }
    var live: gboolean = 0
    gst_query_parse_latency(query, &live, nil, nil)
    return live != 0
  }
}
