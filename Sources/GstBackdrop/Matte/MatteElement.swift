// birefnetmatte's behaviour: start/stop of the engine, caps negotiation, batching, draining at
// serialized events, QoS, latency and the live batch timeout.
//
// Threading: `stream` is touched only with the sink pad's stream lock held (chain and serialized
// events hold it already; the batch-timeout callback takes it). Settings and the figures that
// queries read live in Mutexes, since property setters and queries come from other threads.
import CBackdropEngineABI
import CBackdropShim
import CGStreamer
import Synchronization

/// Per-stream state, guarded by the sink pad's stream lock.
struct MatteStreamState {
  var inputInfo = GstVideoInfo()
  var outputInfo = GstVideoInfo()
  var inputCaps: UnsafeMutablePointer<GstCaps>? = nil
  var session: EngineSession? = nil
  var pending: [UnsafeMutablePointer<GstBuffer>] = []
  var segment = GstSegment()
  var batchSize = 1
  var backgroundImageKey: String? = nil
  /// What the last push downstream returned; a failure is handed upstream on the next buffer.
  var lastFlow = GST_FLOW_OK
}

/// What queries and the timeout read from other threads.
struct MatteSharedState {
  var live = false
  var frameDuration: UInt = 0  // ns, 0 when the framerate is unknown
  var batchSize = MatteSettings.defaultBatchSize
  var processingTime: UInt = 0  // ns, last measured batch
  var reportedProcessingTime: UInt = 0
  var earliestTime: UInt = GST_CLOCK_TIME_NONE_VALUE  // QoS: running time downstream wants next
  var processed: UInt = 0
  var dropped: UInt = 0
  var timeoutID: UInt = 0  // the pending GstClockID's address (0: none); an integer so it is Sendable
  var modelDescription: String? = nil
}

let GST_CLOCK_TIME_NONE_VALUE = UInt.max

final class MatteElement: @unchecked Sendable {
  let element: UnsafeMutablePointer<GstElement>
  let sinkPad: UnsafeMutablePointer<GstPad>
  let srcPad: UnsafeMutablePointer<GstPad>
  let settings = Mutex(MatteSettings())
  let shared = Mutex(MatteSharedState())
  private var stream = MatteStreamState()  // sink pad stream lock
  private var model: EngineModel? = nil  // set in start(), cleared in stop() (state-change thread)

  init(element: UnsafeMutablePointer<GstElement>) {
    self.element = element
    (sinkPad, srcPad) = makeMattePads(for: element)
    gst_segment_init(&stream.segment, GST_FORMAT_TIME)
  }

  private var object: gpointer { UnsafeMutableRawPointer(element) }

  // MARK: properties

  func setProperty(_ property: MatteProperty, _ value: UnsafePointer<GValue>) {
    settings.withLock { $0.set(property, from: value) }
    matteDebug.debug(object, "property \(property) changed")
  }

  func getProperty(_ property: MatteProperty, _ value: UnsafeMutablePointer<GValue>) {
    let description = shared.withLock { $0.modelDescription }
    settings.withLock { $0.get(property, into: value, modelDescription: description) }
  }

  // MARK: state changes

  func changeState(_ transition: GstStateChange, parent: () -> GstStateChangeReturn) -> GstStateChangeReturn {
    if transition == GST_STATE_CHANGE_READY_TO_PAUSED && !start() {
      return GST_STATE_CHANGE_FAILURE
    }
    let result = parent()
    if transition == GST_STATE_CHANGE_PAUSED_TO_READY {
      stop()
    }
    return result
  }

  /// Loads the engine and the model; every failure becomes an ERROR naming what to fix.
  private func start() -> Bool {
    let current = settings.withLock { $0 }
    guard let modelFile = current.modelFile, !modelFile.isEmpty else {
      postError(element, .resource, code: ResourceError.notFound,
                "No model: set the model-file property to BiRefNet weights (.safetensors) or a TorchScript file.")
      return false
    }
    guard let (deviceKind, deviceIndex) = parseDevice(current.device) else {
      postError(element, .resource, code: ResourceError.settings,
                "Invalid device \"\(current.device)\": use auto, cpu, cuda or cuda:N.")
      return false
    }
    let library: EngineLibrary
    do {
      library = try EngineLibrary.load(explicitPath: current.engineLibrary)
    } catch {
      postError(element, .library, code: LibraryError.initFailed, error.message)
      return false
    }
    matteDebug.info(object, "engine \(library.path): \(library.version)")
    var options = bd_model_options()
    var openedModel: EngineModel?
    let status: bd_status = modelFile.withCString { path in
      options.path = path
      options.device = deviceKind
      options.device_index = deviceIndex
      options.precision = bd_precision(rawValue: current.precision.rawValue)
      options.patch_order = bd_patch_order(rawValue: current.patchOrder.rawValue)
      options.threads = Int32(current.threads)
      do {
        openedModel = try EngineModel(library: library, options: options)
        return BD_OK
      } catch {
        let failure = error as! EngineCallError
        let code = failure.status == BD_ERR_DEVICE ? ResourceError.settings : ResourceError.openRead
        postError(element, .resource, code: code, failure.message, debug: "engine: \(library.path)")
        return failure.status
      }
    }
    guard status == BD_OK, let openedModel else { return false }
    model = openedModel
    if deviceKind == BD_DEVICE_AUTO && openedModel.info.device == BD_DEVICE_CPU {
      postWarning(element, .resource, code: ResourceError.settings,
                  "device=auto: no CUDA device is available to the engine, running on the CPU.",
                  debug: library.version)
    }
    let description = openedModel.description
    shared.withLock {
      $0 = MatteSharedState()
      $0.modelDescription = description
      $0.batchSize = current.batchSize
    }
    matteDebug.info(object, "model \(modelFile): \(description)")
    return true
  }

  private func stop() {
    cancelBatchTimeout()
    bd_pad_stream_lock(sinkPad)
    dropPending()
    stream.session = nil
    if let caps = stream.inputCaps { gst_caps_unref(caps) }
    stream = MatteStreamState()
    gst_segment_init(&stream.segment, GST_FORMAT_TIME)
    bd_pad_stream_unlock(sinkPad)
    model = nil
  }

  // MARK: data flow

  func chain(_ buffer: UnsafeMutablePointer<GstBuffer>) -> GstFlowReturn {
    guard stream.session != nil else {
      gst_buffer_unref(buffer)
      postError(element, .core, code: Int32(GST_CORE_ERROR_NEGOTIATION.rawValue),
                "birefnetmatte received a buffer before caps were negotiated.")
      return GST_FLOW_NOT_NEGOTIATED
    }
    if gst_pad_check_reconfigure(srcPad) != 0, let caps = stream.inputCaps {
      let flow = processPending()
      if flow != GST_FLOW_OK && flow != GST_FLOW_NOT_LINKED { gst_buffer_unref(buffer); return flow }
      gst_caps_ref(caps)
      defer { gst_caps_unref(caps) }
      if !configure(caps) {
        gst_pad_mark_reconfigure(srcPad)
        gst_buffer_unref(buffer)
        return GST_FLOW_NOT_NEGOTIATED
      }
    }
    if stream.lastFlow != GST_FLOW_OK {
      // A push from a drain or the batch timeout failed: tell upstream now.
      gst_buffer_unref(buffer)
      return stream.lastFlow
    }
    if isTooLate(buffer) {
      gst_buffer_unref(buffer)
      return GST_FLOW_OK
    }
    stream.pending.append(buffer)
    if stream.pending.count >= stream.batchSize {
      return processPending()
    }
    if stream.pending.count == 1 { armBatchTimeout() }
    return GST_FLOW_OK
  }

  /// Runs the held frames through the engine as one batch and pushes them in order.
  private func processPending() -> GstFlowReturn {
    cancelBatchTimeout()
    let inputs = stream.pending
    stream.pending.removeAll()
    guard !inputs.isEmpty else { return GST_FLOW_OK }
    guard let session = stream.session else {
      inputs.forEach { gst_buffer_unref($0) }
      return GST_FLOW_NOT_NEGOTIATED
    }
    let current = settings.withLock { $0 }
    if current.background == BD_MATTE_BACKGROUND_IMAGE && !prepareBackgroundImage(current.backgroundImage, session) {
      inputs.forEach { gst_buffer_unref($0) }
      return GST_FLOW_ERROR
    }
    let started = g_get_monotonic_time()
    let outputs: [UnsafeMutablePointer<GstBuffer>]
    do {
      outputs = try runEngine(session, inputs, current.compositeParams)
    } catch {
      inputs.forEach { gst_buffer_unref($0) }
      postError(element, .stream, code: StreamError.failed, "Inference failed: \(error.message)")
      return GST_FLOW_ERROR
    }
    inputs.forEach { gst_buffer_unref($0) }
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

  struct ProcessError: Error { let message: String }

  /// Maps the frames, lets the engine write straight into newly allocated output buffers and
  /// copies timestamps and flags across.
  private func runEngine(
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
    for input in inputs {
      inFrames[mappedIn] = GstVideoFrame()
      guard gst_video_frame_map(inFrames + mappedIn, &stream.inputInfo, input, GST_MAP_READ) != 0 else {
        outputs.forEach { gst_buffer_unref($0) }
        throw ProcessError(message: "cannot map an input buffer as \(formatName(stream.inputInfo))")
      }
      mappedIn += 1
      let output = gst_buffer_new_allocate(nil, stream.outputInfo.size, nil)!
      gst_buffer_copy_into(output, input, GstBufferCopyFlags(rawValue: GST_BUFFER_COPY_FLAGS.rawValue | GST_BUFFER_COPY_TIMESTAMPS.rawValue), 0, UInt.max)
      outputs.append(output)
      outFrames[mappedOut] = GstVideoFrame()
      guard gst_video_frame_map(outFrames + mappedOut, &stream.outputInfo, output, GST_MAP_WRITE) != 0 else {
        outputs.forEach { gst_buffer_unref($0) }
        throw ProcessError(message: "cannot map an output buffer")
      }
      mappedOut += 1
      engineInputs.append(engineFrame(inFrames[mappedIn - 1]))
      engineOutputs.append(engineFrame(outFrames[mappedOut - 1]))
    }
    do {
      try session.process(inputs: engineInputs, outputs: engineOutputs, params: params)
    } catch {
      outputs.forEach { gst_buffer_unref($0) }
      throw ProcessError(message: error.message)
    }
    return outputs
  }

  private func engineFrame(_ frame: GstVideoFrame) -> bd_frame {
    var result = bd_frame()
    result.planes = (
      frame.data.0?.assumingMemoryBound(to: UInt8.self), frame.data.1?.assumingMemoryBound(to: UInt8.self),
      frame.data.2?.assumingMemoryBound(to: UInt8.self), frame.data.3?.assumingMemoryBound(to: UInt8.self)
    )
    result.strides = (frame.info.stride.0, frame.info.stride.1, frame.info.stride.2, frame.info.stride.3)
    return result
  }

  private func prepareBackgroundImage(_ path: String?, _ session: EngineSession) -> Bool {
    guard let path, !path.isEmpty else {
      postError(element, .resource, code: ResourceError.settings,
                "background=image needs the background-image property: set it to an image file.")
      return false
    }
    let width = Int(stream.inputInfo.width)
    let height = Int(stream.inputInfo.height)
    let key = "\(path)@\(width)x\(height)"
    if stream.backgroundImageKey == key { return true }
    do {
      let image = try decodeBackgroundImage(path: path, width: width, height: height)
      try image.pixels.withUnsafeBufferPointer {
        try session.setBackgroundImage(rgb: $0.baseAddress!, stride: Int32(image.stride),
                                       width: Int32(width), height: Int32(height))
      }
      stream.backgroundImageKey = key
      return true
    } catch let error as BackgroundImageError {
      postError(element, .resource, code: ResourceError.openRead, error.message)
    } catch let error as EngineCallError {
      postError(element, .resource, code: ResourceError.failed, "background-image \"\(path)\": \(error.message)")
    } catch {
      postError(element, .resource, code: ResourceError.failed, "background-image \"\(path)\": \(error)")
    }
    return false
  }

  private func dropPending() {
    stream.pending.forEach { gst_buffer_unref($0) }
    stream.pending.removeAll()
  }

  // MARK: events

  func sinkEvent(_ pad: UnsafeMutablePointer<GstPad>, _ event: UnsafeMutablePointer<GstEvent>) -> Bool {
    let type = event.pointee.type
    switch type {
    case GST_EVENT_CAPS:
      var caps: UnsafeMutablePointer<GstCaps>?
      gst_event_parse_caps(event, &caps)
      _ = processPending()
      let ok = caps.map { configure($0) } ?? false
      gst_event_unref(event)
      return ok
    case GST_EVENT_SEGMENT:
      _ = processPending()
      var segment: UnsafePointer<GstSegment>?
      gst_event_parse_segment(event, &segment)
      if let segment { gst_segment_copy_into(segment, &stream.segment) }
    case GST_EVENT_FLUSH_START:
      cancelBatchTimeout()
    case GST_EVENT_EOS:
      let flow = processPending()
      if flow == GST_FLOW_NOT_LINKED || flow.rawValue < GST_FLOW_FLUSHING.rawValue {
        // Frames were lost at the end of the stream: say so, as a source would for a failed push.
        postError(element, .stream, code: StreamError.failed,
                  "Internal data stream error: the last frames could not be pushed (\(String(cString: gst_flow_get_name(flow)))).")
      }
    case GST_EVENT_FLUSH_STOP:
      dropPending()
      stream.lastFlow = GST_FLOW_OK
      shared.withLock { $0.earliestTime = GST_CLOCK_TIME_NONE_VALUE }
    case GST_EVENT_STREAM_START, GST_EVENT_TAG:
      break  // stream-level: no need to hold them behind queued frames
    default:
      // EOS, GAP and every other serialized event must not overtake the frames we hold.
      if (event.pointee.type.rawValue & GST_EVENT_TYPE_SERIALIZED.rawValue) != 0 {
        _ = processPending()
      }
    }
    return gst_pad_event_default(pad, UnsafeMutableRawPointer(element).assumingMemoryBound(to: GstObject.self), event) != 0
  }

  func srcEvent(_ pad: UnsafeMutablePointer<GstPad>, _ event: UnsafeMutablePointer<GstEvent>) -> Bool {
    if event.pointee.type == GST_EVENT_QOS {
      var type = GST_QOS_TYPE_OVERFLOW
      var proportion = 0.0
      var diff: GstClockTimeDiff = 0
      var timestamp: GstClockTime = 0
      gst_event_parse_qos(event, &type, &proportion, &diff, &timestamp)
      // As GstBaseTransform does: when late, expect to be at least as late again on the next frame.
      let earliest: UInt
      if diff > 0 {
        earliest = timestamp &+ UInt(2 * diff)
      } else {
        earliest = UInt(max(0, Int64(timestamp) + Int64(diff)))
      }
      shared.withLock { $0.earliestTime = earliest }
    }
    return gst_pad_event_default(pad, UnsafeMutableRawPointer(element).assumingMemoryBound(to: GstObject.self), event) != 0
  }

  /// QoS: drops a frame whose running time is already behind what downstream needs.
  private func isTooLate(_ buffer: UnsafeMutablePointer<GstBuffer>) -> Bool {
    let pts = buffer.pointee.pts
    guard settings.withLock({ $0.qos }), pts != GST_CLOCK_TIME_NONE_VALUE,
      stream.segment.format == GST_FORMAT_TIME
    else { return false }
    let runningTime = gst_segment_to_running_time(&stream.segment, GST_FORMAT_TIME, pts)
    let (late, processed, dropped, live) = shared.withLock { state -> (Bool, UInt, UInt, Bool) in
      let late = state.earliestTime != GST_CLOCK_TIME_NONE_VALUE && runningTime != GST_CLOCK_TIME_NONE_VALUE
        && runningTime <= state.earliestTime
      if late { state.dropped += 1 } else { state.processed += 1 }
      return (late, state.processed, state.dropped, state.live)
    }
    if late {
      let streamTime = gst_segment_to_stream_time(&stream.segment, GST_FORMAT_TIME, pts)
      let message = gst_message_new_qos(
        UnsafeMutableRawPointer(element).assumingMemoryBound(to: GstObject.self), live ? 1 : 0,
        runningTime, streamTime, pts, buffer.pointee.duration)
      gst_message_set_qos_stats(message, GST_FORMAT_BUFFERS, processed, dropped)
      gst_element_post_message(element, message)
      matteDebug.debug(object, "QoS: dropping a late frame at running time \(runningTime)")
    }
    return late
  }

  // MARK: caps

  /// Chooses the output format, tells downstream, and (re)creates the engine session.
  private func configure(_ caps: UnsafeMutablePointer<GstCaps>) -> Bool {
    var inputInfo = GstVideoInfo()
    guard gst_video_info_from_caps(&inputInfo, caps) != 0,
      let inputFormat = MatteFormats.engineFormat(inputInfo.finfo.pointee.format)
    else {
      postError(element, .core, code: Int32(GST_CORE_ERROR_NEGOTIATION.rawValue),
                "birefnetmatte cannot take caps \(capsDescription(caps)).")
      return false
    }
    let current = settings.withLock { $0 }
    guard let (outputCaps, outputInfo) = chooseOutput(inputInfo, background: current.background) else {
      let downstream = gst_pad_peer_query_caps(srcPad, nil)
      defer { if let downstream { gst_caps_unref(downstream) } }
      postError(element, .core, code: Int32(GST_CORE_ERROR_NEGOTIATION.rawValue),
                "birefnetmatte can write none of the formats downstream accepts "
                  + "(it writes \(MatteFormats.sourceFormats.joined(separator: ", "))); downstream accepts \(capsDescription(downstream)).")
      return false
    }
    defer { gst_caps_unref(outputCaps) }
    if gst_pad_push_event(srcPad, gst_event_new_caps(outputCaps)) == 0 {
      matteDebug.warning(object, "downstream refused \(capsDescription(outputCaps))")
      return false
    }
    var outputInfoVar = outputInfo
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
    config.inference_width = Int32(current.inferenceWidth)
    config.inference_height = Int32(current.inferenceHeight)
    let batchSize = current.effectiveBatchSize(live: live)
    config.max_batch = Int32(batchSize)
    guard let model else { return false }
    do {
      stream.session = nil  // free the old session's buffers first
      stream.session = try EngineSession(model: model, config: config)
    } catch {
      postError(element, .resource, code: ResourceError.settings, error.message)
      return false
    }
    if let old = stream.inputCaps { gst_caps_unref(old) }
    stream.inputCaps = gst_caps_ref(caps)
    stream.inputInfo = inputInfo
    stream.outputInfo = outputInfoVar
    stream.batchSize = batchSize
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

  /// The first output format in order of preference that downstream accepts.
  private func chooseOutput(_ input: GstVideoInfo, background: BdMatteBackground)
    -> (UnsafeMutablePointer<GstCaps>, GstVideoInfo)?
  {
    let downstream = gst_pad_peer_query_caps(srcPad, nil)
    defer { if let downstream { gst_caps_unref(downstream) } }
    let inputName = formatName(input)
    for name in MatteFormats.preferredOutputs(input: inputName, background: background) {
      var info = GstVideoInfo()
      let format = gst_video_format_from_string(name)
      guard gst_video_info_set_format(&info, format, UInt32(input.width), UInt32(input.height)) != 0 else { continue }
      info.fps_n = input.fps_n
      info.fps_d = input.fps_d
      info.par_n = input.par_n
      info.par_d = input.par_d
      info.interlace_mode = input.interlace_mode
      if MatteFormats.isYUV(name) && MatteFormats.isYUV(inputName) {
        info.colorimetry = input.colorimetry
        info.chroma_site = input.chroma_site
      }
      guard let caps = gst_video_info_to_caps(&info) else { continue }
      if downstream == nil || gst_caps_can_intersect(caps, downstream) != 0 {
        return (caps, info)
      }
      gst_caps_unref(caps)
    }
    return nil
  }

  private func upstreamIsLive() -> Bool {
    guard let query = gst_query_new_latency() else { return false }
    defer { gst_query_unref(query) }
    guard gst_pad_peer_query(sinkPad, query) != 0 else { return false }
    var live: gboolean = 0
    gst_query_parse_latency(query, &live, nil, nil)
    return live != 0
  }

  // MARK: queries

  func sinkQuery(_ pad: UnsafeMutablePointer<GstPad>, _ query: UnsafeMutablePointer<GstQuery>) -> Bool {
    switch query.pointee.type {
    case GST_QUERY_CAPS:
      answerCapsQuery(query, pad: pad, otherPad: srcPad)
      return true
    case GST_QUERY_ALLOCATION:
      // Our output is a different format: upstream's allocation is ours to answer. Strided frames
      // are fine, the engine follows the video meta.
      gst_query_add_allocation_meta(query, gst_video_meta_api_get_type(), nil)
      return true
    default:
      return gst_pad_query_default(pad, UnsafeMutableRawPointer(element).assumingMemoryBound(to: GstObject.self), query) != 0
    }
  }

  func srcQuery(_ pad: UnsafeMutablePointer<GstPad>, _ query: UnsafeMutablePointer<GstQuery>) -> Bool {
    switch query.pointee.type {
    case GST_QUERY_CAPS:
      answerCapsQuery(query, pad: pad, otherPad: sinkPad)
      return true
    case GST_QUERY_LATENCY:
      guard gst_pad_peer_query(sinkPad, query) != 0 else { return false }
      var live: gboolean = 0
      var minimum: GstClockTime = 0
      var maximum: GstClockTime = 0
      gst_query_parse_latency(query, &live, &minimum, &maximum)
      let ours = ownLatency(live: live != 0)
      gst_query_set_latency(query, live, minimum + ours,
                            maximum == GST_CLOCK_TIME_NONE_VALUE ? maximum : maximum + ours)
      matteDebug.debug(object, "latency: ours \(ours) ns, total min \(minimum + ours)")
      return true
    default:
      return gst_pad_query_default(pad, UnsafeMutableRawPointer(element).assumingMemoryBound(to: GstObject.self), query) != 0
    }
  }

  /// What the element holds back: the frames it waits for to fill a batch, plus a batch's
  /// processing time. A live source's wait is bounded by batch-timeout.
  func ownLatency(live: Bool) -> UInt {
    let (timeoutMs, batchSize) = settings.withLock { ($0.batchTimeoutMs, $0.effectiveBatchSize(live: live)) }
    return shared.withLock { state in
      var waiting = UInt(max(0, batchSize - 1)) * state.frameDuration
      if live && timeoutMs > 0 { waiting = min(waiting, UInt(timeoutMs) * 1_000_000) }
      state.reportedProcessingTime = state.processingTime
      return waiting + state.processingTime
    }
  }

  private func recordProcessingTime(_ nanoseconds: UInt, frames: Int) {
    let postLatency = shared.withLock { state -> Bool in
      state.processingTime = nanoseconds
      // Re-announce latency when a batch takes clearly longer than what we last reported.
      return state.live && nanoseconds > state.reportedProcessingTime + state.reportedProcessingTime / 5 + 1_000_000
    }
    matteDebug.log(GST_LEVEL_LOG, object, "batch of \(frames) took \(nanoseconds / 1_000_000) ms")
    if postLatency {
      gst_element_post_message(element, gst_message_new_latency(UnsafeMutableRawPointer(element).assumingMemoryBound(to: GstObject.self)))
    }
  }

  /// Caps on one pad follow the other pad's peer with the format left open: the element converts
  /// formats but keeps size, framerate and aspect ratio.
  private func answerCapsQuery(
    _ query: UnsafeMutablePointer<GstQuery>, pad: UnsafeMutablePointer<GstPad>, otherPad: UnsafeMutablePointer<GstPad>
  ) {
    var filter: UnsafeMutablePointer<GstCaps>?
    gst_query_parse_caps(query, &filter)
    let template = gst_pad_get_pad_template_caps(pad)!
    var result: UnsafeMutablePointer<GstCaps>
    if let peer = gst_pad_peer_query_caps(otherPad, nil), gst_caps_is_any(peer) == 0 {
      let open = gst_caps_copy(peer)!
      gst_caps_unref(peer)
      for index in 0..<gst_caps_get_size(open) {
        let structure = gst_caps_get_structure(open, index)
        for field in ["format", "colorimetry", "chroma-site"] { gst_structure_remove_field(structure, field) }
      }
      result = gst_caps_intersect_full(template, open, GST_CAPS_INTERSECT_FIRST)
      gst_caps_unref(open)
      gst_caps_unref(template)
    } else {
      result = template
    }
    if let filter {
      let filtered = gst_caps_intersect_full(filter, result, GST_CAPS_INTERSECT_FIRST)!
      gst_caps_unref(result)
      result = filtered
    }
    gst_query_set_caps_result(query, result)
    gst_caps_unref(result)
  }

  // MARK: live batch timeout

  private func armBatchTimeout() {
    let (live, timeoutMs) = (shared.withLock { $0.live }, settings.withLock { $0.batchTimeoutMs })
    guard live, timeoutMs > 0, stream.batchSize > 1 else { return }
    let clock = gst_system_clock_obtain()!
    defer { gst_object_unref(clock) }
    let deadline = gst_clock_get_time(clock) + UInt(timeoutMs) * 1_000_000
    guard let id = gst_clock_new_single_shot_id(clock, deadline) else { return }
    let idBits = UInt(bitPattern: id)
    shared.withLock { $0.timeoutID = idBits }
    gst_object_ref(element)
    gst_clock_id_wait_async(id, { _, _, id, userData in
      let element = userData!.assumingMemoryBound(to: GstElement.self)
      attachedState(element, as: MatteElement.self)?.batchTimeoutFired(id)
      return 1
    }, element, { userData in gst_object_unref(userData) })
  }

  private func cancelBatchTimeout() {
    let idBits = shared.withLock { state -> UInt in
      defer { state.timeoutID = 0 }
      return state.timeoutID
    }
    guard let id = UnsafeMutableRawPointer(bitPattern: idBits) else { return }
    gst_clock_id_unschedule(id)
    gst_clock_id_unref(id)
  }

  private func batchTimeoutFired(_ id: GstClockID?) {
    bd_pad_stream_lock(sinkPad)
    defer { bd_pad_stream_unlock(sinkPad) }
    // A batch that was processed or flushed meanwhile cancelled this timeout.
    let idBits = UInt(bitPattern: id)
    guard idBits != 0, shared.withLock({ $0.timeoutID == idBits }) else { return }
    matteDebug.debug(object, "batch-timeout: pushing \(stream.pending.count) frames")
    let flow = processPending()
    if flow != GST_FLOW_OK && flow != GST_FLOW_FLUSHING {
      matteDebug.warning(object, "partial batch push returned \(String(cString: gst_flow_get_name(flow)))")
    }
  }
}

func formatName(_ info: GstVideoInfo) -> String {
  String(cString: gst_video_format_to_string(info.finfo.pointee.format))
}
