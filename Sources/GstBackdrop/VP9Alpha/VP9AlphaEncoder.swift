// vp9alphaenc's behaviour: two libvpx VP9 encoders in lock-step. The colour encoder gets the
// Y, U and V planes of A420; the alpha encoder gets I420 whose luma is the A plane and whose
// chroma is a constant 128 plane (both zero-copy). Both get the same timestamps and the same
// forced keyframes (libvpx never places keyframes itself), encode concurrently (alpha on a worker
// thread), and their packets are paired in order: the colour packet becomes the output buffer
// and the alpha packet rides along as GstVideoCodecAlphaMeta.
import CBackdropShim
import CGStreamer
import CVPX
import Synchronization

final class VP9AlphaEncoder {
  let element: UnsafeMutablePointer<GstVideoEncoder>
  let settings = Mutex(VP9AlphaSettings())

  // Streaming-thread state (set_format, handle_frame, finish, flush, start and stop are
  // serialised by the base class's stream lock).
  private var colour: VPXEncoder?
  private var alpha: VPXEncoder?
  private var worker: OpaquePointer?
  private var info = GstVideoInfo()
  private var neutralChroma: UnsafeMutablePointer<UInt8>?
  private var chromaStride = 0
  private var frameNumber: Int64 = 0
  private var framesSinceKeyframe = 0
  private var pendingColour: [VPXPacket] = []
  private var pendingAlpha: [VPXPacket] = []
  private var applied = VP9AlphaSettings()
  // Block skipping (see bd_alpha_block_activity): the alpha last coded per block and the maps.
  private var alphaReference: UnsafeMutablePointer<UInt8>?
  private var alphaMap: UnsafeMutablePointer<UInt8>?
  private var colourMap: UnsafeMutablePointer<UInt8>?
  // RGBA/BGRA input: GStreamer's converter writes A420 into a reused buffer.
  private var converter: OpaquePointer?
  private var convertedInfo = GstVideoInfo()
  private var convertedBuffer: UnsafeMutablePointer<GstBuffer>?
  private var blockRows = 0
  private var blockColumns = 0

  init(element: UnsafeMutablePointer<GstVideoEncoder>) {
    self.element = element
  }

  private var gstElement: UnsafeMutablePointer<GstElement> {
    UnsafeMutableRawPointer(element).assumingMemoryBound(to: GstElement.self)
  }

  func start() -> Bool {
    frameNumber = 0
    framesSinceKeyframe = 0
    if worker == nil { worker = bd_vpx_worker_new() }
    return true
  }

  func stop() {
    closeEncoders()
    if let worker { bd_vpx_worker_free(worker) }
    worker = nil
    neutralChroma?.deallocate()
    neutralChroma = nil
    freeBlockMaps()
    freeConverter()
  }

  private func freeConverter() {
    if let converter { gst_video_converter_free(converter) }
    if let convertedBuffer { gst_buffer_unref(convertedBuffer) }
    converter = nil
    convertedBuffer = nil
  }

  private func freeBlockMaps() {
    alphaReference?.deallocate()
    alphaMap?.deallocate()
    colourMap?.deallocate()
    alphaReference = nil
    alphaMap = nil
    colourMap = nil
  }

  private func closeEncoders() {
    for packet in pendingColour + pendingAlpha { gst_buffer_unref(packet.buffer) }
    pendingColour.removeAll()
    pendingAlpha.removeAll()
    colour = nil
    alpha = nil
  }

  func setFormat(_ state: UnsafeMutablePointer<GstVideoCodecState>) -> Bool {
    if colour != nil {
      _ = drain()
      closeEncoders()
    }
    info = state.pointee.info
    freeConverter()
    switch info.finfo.pointee.format {
    case GST_VIDEO_FORMAT_A420: break
    case GST_VIDEO_FORMAT_RGBA, GST_VIDEO_FORMAT_BGRA:
      // Converted to A420 (BT.601 for SD, BT.709 for HD; alpha copied) by GstVideoConverter.
      gst_video_info_set_format(&convertedInfo, GST_VIDEO_FORMAT_A420, UInt32(info.width), UInt32(info.height))
      convertedInfo.fps_n = info.fps_n
      convertedInfo.fps_d = info.fps_d
      converter = gst_video_converter_new(&info, &convertedInfo, nil)
      convertedBuffer = gst_buffer_new_allocate(nil, convertedInfo.size, nil)
      guard converter != nil, convertedBuffer != nil else {
        postError(gstElement, .core, code: Int32(GST_CORE_ERROR_NEGOTIATION.rawValue),
                  "vp9alphaenc cannot convert \(capsDescription(state.pointee.caps)) to A420")
        return false
      }
    default:
      postError(gstElement, .stream, code: StreamError.format,
                "vp9alphaenc needs A420, RGBA or BGRA input, got \(capsDescription(state.pointee.caps))")
      return false
    }
    guard openEncoders() else { return false }
    let caps = makeCaps(
      "video/x-vp9, profile=(string)0, alignment=(string)super-frame, codec-alpha=(boolean)true")
    guard let output = gst_video_encoder_set_output_state(element, caps, state) else { return false }
    gst_video_codec_state_unref(output)
    let lag = applied.lagInFrames
    if lag > 0, info.fps_n > 0 {
      let latency = gst_util_uint64_scale(UInt(lag), 1_000_000_000 * UInt(info.fps_d), UInt(info.fps_n))
      gst_video_encoder_set_latency(element, latency, latency)
    }
    return true
  }

  private func openEncoders() -> Bool {
    let s = settings.withLock { $0 }
    applied = s
    let width = Int(info.width)
    let height = Int(info.height)
    let timebase: (Int32, Int32) = info.fps_n > 0 ? (info.fps_d, info.fps_n) : (1, 30)
    let threads = s.threads > 0 ? s.threads : Int(g_get_num_processors())
    let base = VPXStreamConfig(
      width: width, height: height, timebase: timebase, endUsage: s.endUsage,
      bitrate: s.targetBitrate, cqLevel: s.cqLevel, minQuantizer: s.minQuantizer,
      maxQuantizer: s.maxQuantizer, cpuUsed: s.cpuUsed, threads: threads, rowMT: s.rowMT,
      tileColumns: s.tileColumns, lagInFrames: s.lagInFrames, errorResilient: s.errorResilient,
      aqMode: s.aqMode, lossless: false, name: "colour")
    var alphaConfig = base
    alphaConfig.name = "alpha"
    alphaConfig.bitrate = s.effectiveAlphaBitrate
    alphaConfig.cqLevel = s.effectiveAlphaCqLevel
    alphaConfig.cpuUsed = s.alphaCpuUsed
    alphaConfig.lossless = s.alphaLossless
    alphaConfig.aqMode = 0
    do {
      colour = try VPXEncoder(base)
      alpha = try VPXEncoder(alphaConfig)
    } catch {
      colour = nil
      alpha = nil
      postError(gstElement, .library, code: LibraryError.initFailed, "\(error)")
      return false
    }
    let chromaWidth = (width + 1) / 2
    let chromaSize = chromaWidth * ((height + 1) / 2)
    neutralChroma?.deallocate()
    neutralChroma = .allocate(capacity: chromaSize)
    neutralChroma!.initialize(repeating: 128, count: chromaSize)
    chromaStride = chromaWidth
    freeBlockMaps()
    blockRows = (height + 15) / 16
    blockColumns = (width + 15) / 16
    alphaReference = .allocate(capacity: width * height)
    alphaMap = .allocate(capacity: blockRows * blockColumns)
    colourMap = .allocate(capacity: blockRows * blockColumns)
    vp9AlphaDebug.info(element, "opened colour and alpha VP9 encoders \(width)x\(height), \(threads) threads each, cpu-used \(s.cpuUsed)/\(s.alphaCpuUsed)")
    return true
  }

  /// Applies settings that may change while playing (speed and bitrates).
  private func applyLiveSettings() {
    let s = settings.withLock { $0 }
    guard let colour, let alpha else { return }
    if s.cpuUsed != applied.cpuUsed { try? colour.control(VP8E_SET_CPUUSED, s.cpuUsed, "cpu-used") }
    if s.alphaCpuUsed != applied.alphaCpuUsed {
      try? alpha.control(VP8E_SET_CPUUSED, s.alphaCpuUsed, "alpha-cpu-used")
    }
    if s.targetBitrate != applied.targetBitrate { colour.setBitrate(s.targetBitrate) }
    if s.effectiveAlphaBitrate != applied.effectiveAlphaBitrate { alpha.setBitrate(s.effectiveAlphaBitrate) }
    applied.cpuUsed = s.cpuUsed
    applied.alphaCpuUsed = s.alphaCpuUsed
    applied.targetBitrate = s.targetBitrate
    applied.alphaTargetBitrate = s.alphaTargetBitrate
    applied.deadline = s.deadline
  }

  func handleFrame(_ frame: UnsafeMutablePointer<GstVideoCodecFrame>) -> GstFlowReturn {
    // The base class keeps the frame in its list; packets are matched to the oldest frame.
    defer { gst_video_codec_frame_unref(frame) }
    guard let colour, let alpha, let worker, let neutralChroma else {
      postError(gstElement, .core, code: Int32(GST_CORE_ERROR_NEGOTIATION.rawValue),
                "vp9alphaenc received a frame before its caps")
      return GST_FLOW_NOT_NEGOTIATED
    }
    applyLiveSettings()
    var videoFrame = GstVideoFrame()
    guard gst_video_frame_map(&videoFrame, &info, frame.pointee.input_buffer, GST_MAP_READ) != 0 else {
      postError(gstElement, .stream, code: StreamError.encode, "cannot map input frame \(frame.pointee.system_frame_number)")
      return GST_FLOW_ERROR
    }
    defer { gst_video_frame_unmap(&videoFrame) }
    if let converter, let convertedBuffer {
      var converted = GstVideoFrame()
      guard gst_video_frame_map(&converted, &convertedInfo, convertedBuffer, GST_MAP_WRITE) != 0 else {
        postError(gstElement, .stream, code: StreamError.encode, "cannot map the A420 conversion buffer")
        return GST_FLOW_ERROR
      }
      gst_video_converter_frame(converter, &videoFrame, &converted)
      gst_video_frame_unmap(&videoFrame)
      videoFrame = converted  // unmapped by the defer above
    }

    let forced = frame.pointee.flags & GST_VIDEO_CODEC_FRAME_FLAG_FORCE_KEYFRAME.rawValue != 0
    let maxDistance = applied.keyframeMaxDist
    var flags = 0
    if frameNumber == 0 || forced || framesSinceKeyframe >= maxDistance {
      flags = Int(VPX_EFLAG_FORCE_KF)
      framesSinceKeyframe = 0
      if forced { vp9AlphaDebug.debug(element, "forced keyframe at frame \(frameNumber)") }
    }
    framesSinceKeyframe += 1

    let width = UInt32(info.width)
    let height = UInt32(info.height)
    let planes = videoFrame.data
    let strides = videoFrame.info.stride
    var colourImage = vpx_image_t()
    var alphaImage = vpx_image_t()
    bd_vpx_image_wrap_i420(
      &colourImage, width, height, planes.0?.assumingMemoryBound(to: UInt8.self), strides.0,
      planes.1?.assumingMemoryBound(to: UInt8.self), strides.1,
      planes.2?.assumingMemoryBound(to: UInt8.self), strides.2)
    bd_vpx_image_wrap_i420(
      &alphaImage, width, height, planes.3?.assumingMemoryBound(to: UInt8.self), strides.3,
      neutralChroma, Int32(chromaStride), neutralChroma, Int32(chromaStride))

    // Block skipping needs the map to describe the frame being coded now: not with look-ahead.
    let skipAlpha = applied.alphaStaticThreshold >= 0 && applied.lagInFrames == 0
    let skipColour = applied.skipTransparent && applied.lagInFrames == 0
    if skipAlpha || skipColour, let alphaReference, let alphaMap, let colourMap {
      _ = bd_alpha_block_activity(
        planes.3?.assumingMemoryBound(to: UInt8.self), strides.3, Int32(width), Int32(height),
        alphaReference, Int32(skipAlpha ? applied.alphaStaticThreshold : -1), skipColour ? 1 : 0,
        flags != 0 ? 1 : 0, alphaMap, colourMap)
      if skipAlpha { alpha.setActiveMap(alphaMap, rows: blockRows, columns: blockColumns) }
      if skipColour { colour.setActiveMap(colourMap, rows: blockRows, columns: blockColumns) }
    }

    let deadline = UInt(max(0, applied.deadline))
    let pts = frameNumber
    frameNumber += 1
    let (colourStatus, alphaStatus) = withUnsafePointer(to: &alphaImage) { alphaPointer in
      bd_vpx_worker_start(worker, alpha.rawContext, alphaPointer, pts, 1, flags, deadline)
      let colourStatus = colour.encode(&colourImage, pts: pts, flags: flags, deadline: deadline)
      return (colourStatus, bd_vpx_worker_wait(worker))
    }
    do {
      try colour.check(colourStatus, "encode frame \(pts)")
      try alpha.check(alphaStatus, "encode frame \(pts)")
    } catch {
      postError(gstElement, .stream, code: StreamError.encode, "\(error)")
      return GST_FLOW_ERROR
    }
    _ = collectPackets()
    return pushPairs()
  }

  /// Moves libvpx's packets into the pending queues; returns how many came out.
  private func collectPackets() -> Int {
    guard let colour, let alpha else { return 0 }
    let colourPackets = colour.takePackets()
    let alphaPackets = alpha.takePackets()
    pendingColour += colourPackets
    pendingAlpha += alphaPackets
    return colourPackets.count + alphaPackets.count
  }

  /// Finishes the oldest frames with every colour/alpha pair that is complete.
  private func pushPairs() -> GstFlowReturn {
    var result = GST_FLOW_OK
    while !pendingColour.isEmpty && !pendingAlpha.isEmpty {
      let colourPacket = pendingColour.removeFirst()
      let alphaPacket = pendingAlpha.removeFirst()
      if colourPacket.isKeyframe != alphaPacket.isKeyframe {
        vp9AlphaDebug.warning(element, "keyframe mismatch at pts \(colourPacket.pts): colour \(colourPacket.isKeyframe), alpha \(alphaPacket.isKeyframe)")
      }
      guard let frame = gst_video_encoder_get_oldest_frame(element) else {
        gst_buffer_unref(colourPacket.buffer)
        gst_buffer_unref(alphaPacket.buffer)
        postError(gstElement, .stream, code: StreamError.encode,
                  "libvpx produced a frame with no input frame pending (pts \(colourPacket.pts))")
        return GST_FLOW_ERROR
      }
      alphaPacket.buffer.pointee.pts = frame.pointee.pts
      alphaPacket.buffer.pointee.dts = frame.pointee.dts
      alphaPacket.buffer.pointee.duration = frame.pointee.duration
      gst_buffer_add_video_codec_alpha_meta(colourPacket.buffer, alphaPacket.buffer)
      frame.pointee.output_buffer = colourPacket.buffer
      if colourPacket.isKeyframe {
        frame.pointee.flags |= GST_VIDEO_CODEC_FRAME_FLAG_SYNC_POINT.rawValue
      }
      result = gst_video_encoder_finish_frame(element, frame)
      if result != GST_FLOW_OK { break }
    }
    return result
  }

  /// Drains both encoders (EOS, caps change): feeds NULL images until no packets come out.
  private func drain() -> GstFlowReturn {
    guard let colour, let alpha, let worker else { return GST_FLOW_OK }
    let deadline = UInt(max(0, applied.deadline))
    var result = GST_FLOW_OK
    for _ in 0..<64 {
      bd_vpx_worker_start(worker, alpha.rawContext, nil, frameNumber, 1, 0, deadline)
      let colourStatus = colour.encode(nil, pts: frameNumber, flags: 0, deadline: deadline)
      let alphaStatus = bd_vpx_worker_wait(worker)
      if colourStatus != 0 || alphaStatus != 0 { break }
      if collectPackets() == 0 { break }
      result = pushPairs()
      if result != GST_FLOW_OK { break }
    }
    if !pendingColour.isEmpty || !pendingAlpha.isEmpty {
      vp9AlphaDebug.warning(element, "unpaired packets at drain: \(pendingColour.count) colour, \(pendingAlpha.count) alpha")
    }
    return result
  }

  func finish() -> GstFlowReturn {
    // A stream that ends before its first frame: the base class sends the output caps only with
    // a frame, so send them now; a muxer then still knows the track and writes a valid header.
    if frameNumber == 0, colour != nil, gst_pad_has_current_caps(element.pointee.srcpad) == 0 {
      if gst_video_encoder_negotiate(element) == 0 {
        vp9AlphaDebug.warning(element, "could not send the output caps of an empty stream")
      }
    }
    return drain()
  }

  func flush() {
    guard colour != nil else { return }
    closeEncoders()
    frameNumber = 0
    framesSinceKeyframe = 0
    _ = openEncoders()
  }
}
