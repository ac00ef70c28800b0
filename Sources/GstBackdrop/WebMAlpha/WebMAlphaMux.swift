// webmalphamux's behaviour: interleaves its sink pads' buffers by running time and writes WebM.
// VP9 with codec-alpha becomes BlockGroups whose BlockAdditions (BlockAddID 1) carry the alpha
// frame from GstVideoCodecAlphaMeta; plain VP9 and audio become SimpleBlocks. Clusters start at
// video keyframes (and at the latest every 30 s, within the 16-bit relative timestamps).
//
// Seekable downstream (a file): each cluster is written whole once it is complete, and at EOS
// the muxer appends Cues, then seeks back (BYTES segment events, as matroskamux does) to patch
// the Segment size, the SeekHead and the Duration. Otherwise (a pipe, or streamable=true): the
// Segment and Clusters have unknown sizes, blocks go out as they come, no Cues or Duration.
import CBackdropShim
import CGStreamer
import Synchronization

struct WebMMuxSettings: Sendable {
  var streamable = false
  var title = ""
}

final class WebMAlphaMux {
  let aggregator: UnsafeMutablePointer<GstAggregator>
  let settings = Mutex(WebMMuxSettings())
  /// Pad counters for request pad names (touched from request_new_pad under the element lock).
  let padCounters = Mutex((video: 0, audio: 0))

  private struct TrackState {
    var track: WebMTrack
    var lastTimestampMs: Int64 = -1
  }

  // Streaming state: touched by aggregate (the source pad's thread), start and stop.
  private var tracks: [UInt: TrackState] = [:]  // by pad address
  private var headerWritten = false
  private var live = false  // unknown sizes, no seeking back
  private var position: UInt64 = 0  // bytes pushed downstream
  private var segmentSizePosition: UInt64 = 0
  private var segmentDataStart: UInt64 = 0
  private var seekHeadPosition: UInt64 = 0
  private var infoPosition: UInt64 = 0
  private var tracksPosition: UInt64 = 0
  private var durationPosition: UInt64 = 0
  /// Subtracted from running times: the first one, so files start at 0 (moved after a flush).
  private var timestampOffsetNs: Int64? = nil
  private var rebaseAfterFlush = false
  private var endTimeNs: UInt64 = 0
  private var cluster: EBMLWriter? = nil
  private var clusterTimestampMs: Int64 = 0
  private var clusterHasBlocks = false
  private var liveClusterOpen = false  // live: a Cluster of unknown size is open
  private var pendingCueTrack: UInt64? = nil  // seekable: the cluster opened at this track's keyframe
  private var finished = false
  private var cues: [(timeMs: Int64, track: UInt64, position: UInt64)] = []
  private var videoTrackNumber: UInt64? = nil

  static let seekHeadReserved = 96
  static let maxClusterSpanMs: Int64 = 30_000
  static let audioOnlyClusterMs: Int64 = 5_000

  init(aggregator: UnsafeMutablePointer<GstAggregator>) {
    self.aggregator = aggregator
  }

  private var element: UnsafeMutablePointer<GstElement> {
    UnsafeMutableRawPointer(aggregator).assumingMemoryBound(to: GstElement.self)
  }

  func start() -> Bool {
    tracks = [:]
    headerWritten = false
    live = false
    position = 0
    timestampOffsetNs = nil
    rebaseAfterFlush = false
    endTimeNs = 0
    cluster = nil
    cues = []
    videoTrackNumber = nil
    finished = false
    clusterHasBlocks = false
    liveClusterOpen = false
    pendingCueTrack = nil
    return true
  }

  func stop() -> Bool { start() }

  // MARK: pads

  /// The sink pads (new references) in their order on the element.
  private func sinkPads() -> [UnsafeMutablePointer<GstAggregatorPad>] {
    var pads: [UnsafeMutablePointer<GstAggregatorPad>] = []
    g_mutex_lock(&element.pointee.object.lock)
    var node = element.pointee.sinkpads
    while let current = node {
      if let data = current.pointee.data {
        gst_object_ref(data)
        pads.append(data.assumingMemoryBound(to: GstAggregatorPad.self))
      }
      node = current.pointee.next
    }
    g_mutex_unlock(&element.pointee.object.lock)
    return pads
  }

  /// Whether a video sink pad exists (one is allowed).
  func hasVideoPad() -> Bool {
    let pads = sinkPads()
    defer { for pad in pads { gst_object_unref(pad) } }
    return pads.contains { isVideoPad($0) }
  }

  private func key(_ pad: UnsafeMutablePointer<GstAggregatorPad>) -> UInt { UInt(bitPattern: pad) }

  /// Running time of a buffer on its pad, or nil without a timestamp.
  private func runningTime(_ buffer: UnsafeMutablePointer<GstBuffer>, on pad: UnsafeMutablePointer<GstAggregatorPad>) -> UInt64? {
    let none = UInt.max
    var ts = buffer.pointee.pts
    if ts == none { ts = buffer.pointee.dts }
    if ts == none { return nil }
    guard pad.pointee.segment.format == GST_FORMAT_TIME else { return UInt64(ts) }
    let running = gst_segment_to_running_time(&pad.pointee.segment, GST_FORMAT_TIME, ts)
    return running == none ? nil : UInt64(running)
  }

  // MARK: aggregate

  func aggregate(timeout: Bool) -> GstFlowReturn {
    let pads = sinkPads()
    defer { for pad in pads { gst_object_unref(pad) } }

    // The pad whose next buffer is earliest; non-EOS pads without data block (unless timed out).
    var best: (pad: UnsafeMutablePointer<GstAggregatorPad>, time: UInt64)? = nil
    var waiting = false
    var allEOS = true
    for pad in pads {
      guard let buffer = gst_aggregator_pad_peek_buffer(pad) else {
        if gst_aggregator_pad_is_eos(pad) == 0 {
          allEOS = false
          waiting = true
        }
        continue
      }
      allEOS = false
      let time = runningTime(buffer, on: pad) ?? 0
      gst_buffer_unref(buffer)
      if best == nil || time < best!.time { best = (pad, time) }
    }
    if allEOS {
      // A stream that ended before its first buffer still gets a valid, empty WebM (EBML header,
      // Segment, Info, Tracks), as webmmux writes one: a 0-byte file is not a video.
      if !headerWritten && !finished && pads.contains(where: hasCaps) {
        var result = writeHeader(pads)
        if result != GST_FLOW_OK { return result }
        // One empty Cluster (a timestamp, no blocks): without any Cluster, ffmpeg's demuxer
        // rejects the file ("End of file") although Matroska allows it.
        var w = EBMLWriter()
        w.master(EBMLID.cluster) { c in c.uint(EBMLID.timestamp, 0) }
        result = push(w.bytes)
        if result != GST_FLOW_OK { return result }
      }
      return finish()
    }
    if waiting && !timeout {
      return GstFlowReturn(rawValue: GST_FLOW_CUSTOM_SUCCESS.rawValue)  // GST_AGGREGATOR_FLOW_NEED_DATA
    }
    guard let best else { return GST_FLOW_OK }

    if !headerWritten {
      let result = writeHeader(pads)
      if result != GST_FLOW_OK { return result }
    }
    guard let buffer = gst_aggregator_pad_pop_buffer(best.pad) else { return GST_FLOW_OK }
    defer { gst_buffer_unref(buffer) }
    guard var state = tracks[key(best.pad)] else {
      // A pad that appeared after the header (WebM cannot add tracks): its data is dropped.
      webmDebug.warning(aggregator, "dropping a buffer of a pad added after the header")
      return GST_FLOW_OK
    }
    let result = writeBlock(buffer, time: best.time, state: &state)
    tracks[key(best.pad)] = state
    return result
  }

  // MARK: header

  private func writeHeader(_ pads: [UnsafeMutablePointer<GstAggregatorPad>]) -> GstFlowReturn {
    var number: UInt64 = 1
    var firstTime: UInt64? = nil
    // Video first (track 1), then audio in pad order.
    let ordered = pads.sorted { isVideoPad($0) && !isVideoPad($1) }
    for pad in ordered {
      guard let caps = gst_pad_get_current_caps(UnsafeMutableRawPointer(pad).assumingMemoryBound(to: GstPad.self)) else { continue }
      defer { gst_caps_unref(caps) }
      do {
        let track = try WebMTrack(number: number, caps: caps)
        tracks[key(pad)] = TrackState(track: track)
        if track.kind == .video { videoTrackNumber = number }
        number += 1
      } catch {
        postError(element, .stream, code: StreamError.format, "webmalphamux: \(error)",
                  debug: "caps \(capsDescription(caps))")
        return GST_FLOW_NOT_NEGOTIATED
      }
      if let buffer = gst_aggregator_pad_peek_buffer(pad) {
        if let time = runningTime(buffer, on: pad) { firstTime = min(firstTime ?? time, time) }
        gst_buffer_unref(buffer)
      }
    }
    guard !tracks.isEmpty else {
      postError(element, .stream, code: StreamError.format, "webmalphamux has no stream with caps to write")
      return GST_FLOW_NOT_NEGOTIATED
    }
    timestampOffsetNs = Int64(firstTime ?? 0)

    let streamable = settings.withLock { $0.streamable }
    live = streamable || !downstreamIsSeekable()
    webmDebug.info(aggregator, "writing \(live ? "streamable" : "seekable") WebM with \(tracks.count) track(s), timestamps offset by \(timestampOffsetNs ?? 0) ns")

    var segment = GstSegment()
    gst_segment_init(&segment, GST_FORMAT_BYTES)
    gst_aggregator_update_segment(aggregator, &segment)

    var w = EBMLWriter()
    w.master(EBMLID.ebml) { h in
      h.uint(EBMLID.ebmlVersion, 1)
      h.uint(EBMLID.ebmlReadVersion, 1)
      h.uint(EBMLID.ebmlMaxIDLength, 4)
      h.uint(EBMLID.ebmlMaxSizeLength, 8)
      h.string(EBMLID.docType, "webm")
      h.uint(EBMLID.docTypeVersion, 4)
      h.uint(EBMLID.docTypeReadVersion, 2)
    }
    w.id(EBMLID.segment)
    segmentSizePosition = UInt64(w.count)
    w.unknownSize()  // patched at EOS when seekable
    segmentDataStart = UInt64(w.count)
    if !live {
      seekHeadPosition = UInt64(w.count)
      w.void(total: WebMAlphaMux.seekHeadReserved)  // replaced by the SeekHead at EOS
    }
    infoPosition = UInt64(w.count)
    var info = EBMLWriter()
    info.uint(EBMLID.timestampScale, 1_000_000)
    info.string(EBMLID.muxingApp, "backdrop webmalphamux")
    info.string(EBMLID.writingApp, "backdrop webmalphamux")
    let title = settings.withLock { $0.title }
    if !title.isEmpty { info.string(EBMLID.title, title) }
    var durationOffsetInInfo = 0
    if !live {
      info.id(EBMLID.duration)
      info.size(8)
      durationOffsetInInfo = info.count
      info.append(EBMLWriter.float64Bytes(0))  // patched at EOS
    }
    w.id(EBMLID.info)
    w.size(UInt64(info.count))
    durationPosition = UInt64(w.count + durationOffsetInInfo)
    w.append(info.bytes)
    tracksPosition = UInt64(w.count)
    let sortedTracks = tracks.values.map(\.track).sorted { $0.number < $1.number }
    w.master(EBMLID.tracks) { t in
      for track in sortedTracks { track.writeEntry(&t) }
    }
    headerWritten = true
    setSourceCaps(header: live ? w.bytes : nil)
    return push(w.bytes, flags: GST_BUFFER_FLAG_HEADER.rawValue)
  }

  /// video/webm (audio/webm without video); live output also carries the header as
  /// `streamheader`, so that servers such as tcpserversink can hand it to late clients.
  private func setSourceCaps(header: [UInt8]?) {
    let caps = makeCaps(videoTrackNumber != nil ? "video/webm" : "audio/webm")
    defer { gst_caps_unref(caps) }
    if let header, let structure = gst_caps_get_structure(caps, 0) {
      let buffer = header.withUnsafeBytes { gst_buffer_new_memdup($0.baseAddress, UInt($0.count)) }!
      buffer.pointee.mini_object.flags |= GST_BUFFER_FLAG_HEADER.rawValue
      var array = GValue()
      var item = GValue()
      g_value_init(&array, gst_value_array_get_type())
      g_value_init(&item, gst_buffer_get_type())
      g_value_take_boxed(&item, buffer)
      gst_value_array_append_and_take_value(&array, &item)
      gst_structure_take_value(structure, "streamheader", &array)
    }
    gst_aggregator_set_src_caps(aggregator, caps)
  }

  private func hasCaps(_ pad: UnsafeMutablePointer<GstAggregatorPad>) -> Bool {
    guard let caps = gst_pad_get_current_caps(UnsafeMutableRawPointer(pad).assumingMemoryBound(to: GstPad.self)) else {
      return false
    }
    gst_caps_unref(caps)
    return true
  }

  private func isVideoPad(_ pad: UnsafeMutablePointer<GstAggregatorPad>) -> Bool {
    let template = UnsafeMutableRawPointer(pad).assumingMemoryBound(to: GstPad.self).pointee.padtemplate
    guard let template else { return false }
    return String(cString: template.pointee.name_template).hasPrefix("video")
  }

  private func downstreamIsSeekable() -> Bool {
    let query = gst_query_new_seeking(GST_FORMAT_BYTES)!
    defer { gst_query_unref(query) }
    guard gst_pad_peer_query(aggregator.pointee.srcpad, query) != 0 else { return false }
    var seekable: gboolean = 0
    gst_query_parse_seeking(query, nil, &seekable, nil, nil)
    return seekable != 0
  }

  // MARK: blocks and clusters

  private func writeBlock(_ buffer: UnsafeMutablePointer<GstBuffer>, time: UInt64, state: inout TrackState) -> GstFlowReturn {
    if rebaseAfterFlush {
      // After a flush running times restart: continue the file where it ended.
      timestampOffsetNs = Int64(time) - Int64(endTimeNs)
      rebaseAfterFlush = false
      webmDebug.info(aggregator, "continuing after a flush at \(endTimeNs) ns")
    }
    let relativeNs = UInt64(max(0, Int64(time) - (timestampOffsetNs ?? 0)))
    var timestampMs = Int64((relativeNs + 500_000) / 1_000_000)
    // Blocks of one track never go backwards (e.g. after a flush).
    if timestampMs < state.lastTimestampMs { timestampMs = state.lastTimestampMs }
    let duration = buffer.pointee.duration
    let end = relativeNs + (duration != UInt.max ? UInt64(duration) : 0)
    endTimeNs = max(endTimeNs, end)

    let track = state.track
    let isKeyframe = buffer.pointee.mini_object.flags & GST_BUFFER_FLAG_DELTA_UNIT.rawValue == 0
    var result = GST_FLOW_OK

    let needsCluster: Bool
    if (!live && cluster == nil) || (live && !liveClusterOpen) {
      needsCluster = true
    } else if track.kind == .video && isKeyframe && clusterHasBlocks {
      needsCluster = true
    } else if videoTrackNumber == nil && timestampMs - clusterTimestampMs >= WebMAlphaMux.audioOnlyClusterMs {
      needsCluster = true
    } else {
      needsCluster = timestampMs - clusterTimestampMs > WebMAlphaMux.maxClusterSpanMs
        || timestampMs < clusterTimestampMs - 30_000
    }
    if needsCluster {
      result = closeCluster()
      if result != GST_FLOW_OK { return result }
      result = openCluster(timestampMs: timestampMs, keyframeOn: (track.kind == .video || videoTrackNumber == nil) && isKeyframe ? track.number : nil)
      if result != GST_FLOW_OK { return result }
    }

    var block = EBMLWriter()
    let relative = Int16(clamping: timestampMs - clusterTimestampMs)
    let alpha = track.hasAlpha ? alphaFrame(of: buffer) : nil
    if track.hasAlpha {
      if alpha == nil {
        webmDebug.warning(aggregator, "frame at \(timestampMs) ms has no alpha meta; browsers need alpha on every frame")
      }
      block.master(EBMLID.blockGroup) { g in
        var content = EBMLWriter()
        content.size(track.number)
        content.append(blockHeader(relative, flags: 0))
        appendBuffer(buffer, to: &content)
        g.binary(EBMLID.block, content.bytes)
        if let alpha {
          g.master(EBMLID.blockAdditions) { a in
            a.master(EBMLID.blockMore) { m in
              m.uint(EBMLID.blockAddID, 1)
              m.binary(EBMLID.blockAdditional, alpha)
            }
          }
        }
        if !isKeyframe && state.lastTimestampMs >= 0 {
          g.sint(EBMLID.referenceBlock, min(-1, state.lastTimestampMs - timestampMs))
        }
      }
    } else {
      var content = EBMLWriter()
      content.size(track.number)
      content.append(blockHeader(relative, flags: isKeyframe || track.kind == .audio ? 0x80 : 0x00))
      appendBuffer(buffer, to: &content)
      block.binary(EBMLID.simpleBlock, content.bytes)
    }
    state.lastTimestampMs = timestampMs
    clusterHasBlocks = true
    if live {
      return push(block.bytes, flags: GST_BUFFER_FLAG_DELTA_UNIT.rawValue)
    }
    cluster!.append(block.bytes)
    return GST_FLOW_OK
  }

  private func blockHeader(_ relative: Int16, flags: UInt8) -> [UInt8] {
    let raw = UInt16(bitPattern: relative)
    return [UInt8(raw >> 8), UInt8(raw & 0xFF), flags]
  }

  private func appendBuffer(_ buffer: UnsafeMutablePointer<GstBuffer>, to writer: inout EBMLWriter) {
    var map = GstMapInfo()
    guard gst_buffer_map(buffer, &map, GST_MAP_READ) != 0 else { return }
    writer.append(UnsafeRawBufferPointer(start: map.data, count: Int(map.size)))
    gst_buffer_unmap(buffer, &map)
  }

  private func alphaFrame(of buffer: UnsafeMutablePointer<GstBuffer>) -> [UInt8]? {
    guard let meta = gst_buffer_get_meta(buffer, gst_video_codec_alpha_meta_api_get_type()) else { return nil }
    let alphaMeta = UnsafeMutableRawPointer(meta).assumingMemoryBound(to: GstVideoCodecAlphaMeta.self)
    guard let alpha = alphaMeta.pointee.buffer else { return nil }
    var writer = EBMLWriter()
    appendBuffer(alpha, to: &writer)
    return writer.bytes
  }

  private func openCluster(timestampMs: Int64, keyframeOn trackNumber: UInt64?) -> GstFlowReturn {
    clusterTimestampMs = timestampMs
    clusterHasBlocks = false
    var head = EBMLWriter()
    head.uint(EBMLID.timestamp, UInt64(max(0, timestampMs)))
    if live {
      var w = EBMLWriter()
      w.id(EBMLID.cluster)
      w.unknownSize()
      w.append(head.bytes)
      liveClusterOpen = true
      // A cluster opened at a keyframe is where a live client may start.
      return push(w.bytes, flags: trackNumber != nil ? 0 : GST_BUFFER_FLAG_DELTA_UNIT.rawValue)
    }
    cluster = head
    pendingCueTrack = trackNumber
    return GST_FLOW_OK
  }

  /// Seekable mode: writes the buffered cluster with its size and records its cue.
  private func closeCluster() -> GstFlowReturn {
    guard !live, let content = cluster else { return GST_FLOW_OK }
    cluster = nil
    if let track = pendingCueTrack {
      cues.append((clusterTimestampMs, track, position - segmentDataStart))
    }
    var w = EBMLWriter()
    w.binary(EBMLID.cluster, content.bytes)
    return push(w.bytes)
  }

  // MARK: EOS

  private func finish() -> GstFlowReturn {
    if finished || !headerWritten { return GST_FLOW_EOS }
    finished = true
    var result = closeCluster()
    guard result == GST_FLOW_OK else { return result }
    if live { return GST_FLOW_EOS }

    let cuesPosition = position
    if !cues.isEmpty {
      var w = EBMLWriter()
      w.master(EBMLID.cues) { c in
        for cue in cues {
          c.master(EBMLID.cuePoint) { p in
            p.uint(EBMLID.cueTime, UInt64(max(0, cue.timeMs)))
            p.master(EBMLID.cueTrackPositions) { t in
              t.uint(EBMLID.cueTrack, cue.track)
              t.uint(EBMLID.cueClusterPosition, cue.position)
            }
          }
        }
      }
      result = push(w.bytes)
      guard result == GST_FLOW_OK else { return result }
    }
    let end = position

    // Segment size.
    var size = EBMLWriter()
    size.size(end - segmentDataStart, length: 8)
    result = pushAt(segmentSizePosition, size.bytes)
    guard result == GST_FLOW_OK else { return result }
    // SeekHead (Info, Tracks, Cues) in the reserved space.
    var seekHead = EBMLWriter()
    seekHead.master(EBMLID.seekHead) { s in
      func entry(_ id: UInt32, _ at: UInt64) {
        s.master(EBMLID.seek) { e in
          var idBytes = EBMLWriter()
          idBytes.id(id)
          e.binary(EBMLID.seekID, idBytes.bytes)
          e.uint(EBMLID.seekPosition, at - segmentDataStart)
        }
      }
      entry(EBMLID.info, infoPosition)
      entry(EBMLID.tracks, tracksPosition)
      if !cues.isEmpty { entry(EBMLID.cues, cuesPosition) }
    }
    let rest = WebMAlphaMux.seekHeadReserved - seekHead.count
    if rest >= 2 { seekHead.void(total: rest) }
    if rest == 0 || rest >= 2 {
      result = pushAt(seekHeadPosition, seekHead.bytes)
      guard result == GST_FLOW_OK else { return result }
    }
    // Duration in milliseconds (the TimestampScale).
    result = pushAt(durationPosition, EBMLWriter.float64Bytes(Double(endTimeNs) / 1_000_000))
    guard result == GST_FLOW_OK else { return result }
    webmDebug.info(aggregator, "finished: \(end) bytes, \(cues.count) cues, duration \(endTimeNs) ns")
    return GST_FLOW_EOS
  }

  // MARK: output

  private func push(_ bytes: [UInt8], flags: UInt32 = 0) -> GstFlowReturn {
    guard !bytes.isEmpty else { return GST_FLOW_OK }
    let buffer = bytes.withUnsafeBytes { gst_buffer_new_memdup($0.baseAddress, UInt($0.count)) }!
    buffer.pointee.mini_object.flags |= flags
    buffer.pointee.offset = UInt(position)
    position += UInt64(bytes.count)
    return gst_aggregator_finish_buffer(aggregator, buffer)
  }

  /// Rewrites bytes at an earlier offset: a BYTES segment event starting there, then the data.
  private func pushAt(_ offset: UInt64, _ bytes: [UInt8]) -> GstFlowReturn {
    var segment = GstSegment()
    gst_segment_init(&segment, GST_FORMAT_BYTES)
    segment.start = UInt(offset)
    segment.position = UInt(offset)
    guard gst_pad_push_event(aggregator.pointee.srcpad, gst_event_new_segment(&segment)) != 0 else {
      postWarning(element, .stream, code: StreamError.failed,
                  "webmalphamux could not seek downstream to finish the file header; the file has no index")
      return GST_FLOW_OK
    }
    let buffer = bytes.withUnsafeBytes { gst_buffer_new_memdup($0.baseAddress, UInt($0.count)) }!
    buffer.pointee.offset = UInt(offset)
    return gst_aggregator_finish_buffer(aggregator, buffer)
  }

  /// A flushing seek upstream. The flush also reaches downstream, where a file sink truncates
  /// its file: seekable output therefore starts a new file from the next buffer (header again,
  /// timestamps from 0). Live output (a pipe) keeps going, continuing at its end time.
  func flush() {
    guard headerWritten else { return }
    if live {
      webmDebug.debug(aggregator, "flush: the live stream continues")
      rebaseAfterFlush = true
      var segment = GstSegment()
      gst_segment_init(&segment, GST_FORMAT_BYTES)
      segment.start = UInt(position)
      segment.position = UInt(position)
      gst_aggregator_update_segment(aggregator, &segment)
      return
    }
    webmDebug.info(aggregator, "flush: downstream restarts, writing a new file")
    _ = start()
  }
}
