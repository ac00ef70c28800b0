// Splitting a clip into time ranges that each decode on their own: the input's keyframes are read
// with GStreamer (demuxer and parser, no decoding) and the N-1 cuts go to the keyframes nearest
// to even shares of the duration. `backdrop plan` prints these ranges; `compose --segment`
// processes one; `join` checks the pieces against what each part recorded about its range.
import CGStreamer
import Foundation
import Synchronization

/// Every video frame's timestamp and which of them are keyframes, in presentation order.
struct KeyframeIndex {
  var framesNs: [UInt64] = []
  var keyframesNs: [UInt64] = []

  /// Reads `path` through `parsebin` into fake sinks, noting each video buffer's PTS and whether
  /// it is a key unit (no DELTA_UNIT flag).
  static func scan(_ path: String) throws -> KeyframeIndex {
    let pipeline = try Pipeline("filesrc location=\(gstQuote(path)) ! parsebin name=parse")
    guard let parser = pipeline.child("parse") else { throw LauncherError.failed("no parsebin") }
    defer { gst_object_unref(parser) }
    let collector = Collector(pipeline.element)
    let padAdded: @convention(c) (UnsafeMutablePointer<GstElement>?, UnsafeMutablePointer<GstPad>?, gpointer?) -> Void = {
      _, pad, data in
      guard let pad, let data else { return }
      let collector = Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue()
      var isVideo = false
      if let caps = gst_pad_get_current_caps(pad) ?? gst_pad_query_caps(pad, nil) {
        if let structure = gst_caps_get_structure(caps, 0) {
          isVideo = String(cString: gst_structure_get_name(structure)).hasPrefix("video/")
        }
        gst_caps_unref(caps)
      }
      if isVideo && collector.claimVideo() {
        let mask = GstPadProbeType(rawValue: GST_PAD_PROBE_TYPE_BUFFER.rawValue | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM.rawValue)
        gst_pad_add_probe(pad, mask, { _, info, data in
          guard let info, let data else { return GST_PAD_PROBE_OK }
          let collector = Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue()
          guard let buffer = info.pointee.data?.assumingMemoryBound(to: GstBuffer.self),
            info.pointee.type.rawValue & GST_PAD_PROBE_TYPE_BUFFER.rawValue != 0
          else {
            if let event = info.pointee.data?.assumingMemoryBound(to: GstEvent.self) { collector.streamTime.update(event) }
            return GST_PAD_PROBE_OK
          }
          let isKey = (buffer.pointee.mini_object.flags & GST_BUFFER_FLAG_DELTA_UNIT.rawValue) == 0
          let pts = buffer.pointee.pts != UInt.max ? buffer.pointee.pts : buffer.pointee.dts
          if pts != UInt.max, let time = collector.streamTime.of(UInt64(pts)) {
            collector.add(time, key: isKey)
          }
          return GST_PAD_PROBE_OK
        }, data, nil)
      }
      linkQueuedFakeSink(pad, in: collector.pipeline)
    }
    let retained = Unmanaged.passRetained(collector)
    defer { retained.release() }
    g_signal_connect_data(
      parser, "pad-added", unsafeBitCast(padAdded, to: GCallback.self), retained.toOpaque(), nil, GConnectFlags(0))
    switch pipeline.run(timeout: 3600) {
    case .eos: break
    case .error(let text): throw LauncherError.data("\(path): cannot read its keyframes (\(text))")
    case .aborted: throw LauncherError.aborted("aborted")
    case .timedOut: throw LauncherError.failed("\(path): timed out while reading its keyframes")
    }
    gst_element_set_state(pipeline.element, GST_STATE_NULL)
    var index = collector.index
    index.framesNs.sort()
    index.keyframesNs = Array(Set(index.keyframesNs)).sorted()
    guard !index.framesNs.isEmpty else { throw LauncherError.data("\(path) has no video frames") }
    return index
  }

  private final class Collector: @unchecked Sendable {
    let pipeline: UnsafeMutablePointer<GstElement>
    let streamTime = StreamTime()
    private let state = Mutex((index: KeyframeIndex(), claimed: false))
    init(_ pipeline: UnsafeMutablePointer<GstElement>) { self.pipeline = pipeline }
    var index: KeyframeIndex { state.withLock { $0.index } }
    /// The first video stream is the one indexed.
    func claimVideo() -> Bool { state.withLock { if $0.claimed { return false }; $0.claimed = true; return true } }
    func add(_ pts: UInt64, key: Bool) {
      state.withLock {
        $0.index.framesNs.append(pts)
        if key { $0.index.keyframesNs.append(pts) }
      }
    }
  }
}

/// Stream time of buffers on a pad (the position a seek names), from its last SEGMENT event:
/// PTS − start + time. Containers with an edit list (MP4 with B-frames) start their PTS later
/// than 0, so plans, seeks and range checks all use stream time.
final class StreamTime: @unchecked Sendable {
  private let offset = Atomic<Int64>(0)

  func update(_ event: UnsafeMutablePointer<GstEvent>) {
    guard event.pointee.type == GST_EVENT_SEGMENT else { return }
    var segment: UnsafePointer<GstSegment>?
    gst_event_parse_segment(event, &segment)
    guard let segment, segment.pointee.format == GST_FORMAT_TIME else { return }
    offset.store(Int64(segment.pointee.time) - Int64(segment.pointee.start), ordering: .relaxed)
  }

  func of(_ pts: UInt64) -> UInt64? {
    let time = Int64(pts) + offset.load(ordering: .relaxed)
    return time >= 0 ? UInt64(time) : nil
  }
}

/// Links `pad` to a new `queue ! fakesink sync=false` in `pipeline`: one streaming thread per
/// stream, so that a demuxer's thread is never held by one sink's preroll while another waits.
func linkQueuedFakeSink(_ pad: UnsafeMutablePointer<GstPad>, in pipeline: UnsafeMutablePointer<GstElement>) {
  guard let queue = gst_element_factory_make("queue", nil), let sink = gst_element_factory_make("fakesink", nil) else { return }
  g_object_set_property_bool(sink, "sync", false)
  let bin = UnsafeMutableRawPointer(pipeline).assumingMemoryBound(to: GstBin.self)
  gst_bin_add(bin, queue)
  gst_bin_add(bin, sink)
  gst_element_link(queue, sink)
  gst_element_sync_state_with_parent(sink)
  gst_element_sync_state_with_parent(queue)
  if let queuePad = gst_element_get_static_pad(queue, "sink") {
    gst_pad_link(pad, queuePad)
    gst_object_unref(queuePad)
  }
}

/// g_object_set for one boolean property (g_object_set itself is variadic).
func g_object_set_property_bool(_ object: UnsafeMutablePointer<GstElement>, _ name: String, _ value: Bool) {
  var gvalue = GValue()
  g_value_init(&gvalue, GType(5 << 2))  // G_TYPE_BOOLEAN
  g_value_set_boolean(&gvalue, value ? 1 : 0)
  g_object_set_property(UnsafeMutableRawPointer(object).assumingMemoryBound(to: GObject.self), name, &gvalue)
  g_value_unset(&gvalue)
}

/// One range of a plan: frames whose PTS lies in [startNs, endNs) (endNs nil: to the end).
struct SegmentRange: Equatable {
  var index: Int
  var count: Int
  var startNs: UInt64
  var endNs: UInt64?
  var frames: Int
}

/// The ranges of a clip cut into `parts` at keyframes, and what identifies the clip.
struct SegmentPlan {
  var clip: String
  var frames: Int
  var durationNs: UInt64
  var ranges: [SegmentRange]

  /// Cuts at the keyframes nearest to k/parts of the clip's span (k = 1..parts-1).
  init(index: KeyframeIndex, parts: Int, clip: String, path: String) throws {
    guard parts >= 1 else { throw LauncherError.usage("--parts must be at least 1 (got \(parts))") }
    let first = index.framesNs.first!, last = index.framesNs.last!
    let step = index.framesNs.count > 1 ? (last - first) / UInt64(index.framesNs.count - 1) : 0
    let span = last + step - first
    var cuts: [UInt64] = [first]
    var candidates = index.keyframesNs.filter { $0 > first }
    for k in 1..<max(parts, 1) {
      let target = first + span * UInt64(k) / UInt64(parts)
      guard let nearest = candidates.min(by: { absDiff($0, target) < absDiff($1, target) }) else { break }
      cuts.append(nearest)
      candidates.removeAll { $0 <= nearest }
    }
    guard cuts.count == parts else {
      throw LauncherError.usage(
        "\(path) has \(index.keyframesNs.count) keyframe(s), too few to cut it into \(parts) parts: "
          + "use --parts \(cuts.count) or fewer, or re-encode it with keyframes more often")
    }
    var ranges: [SegmentRange] = []
    for (k, start) in cuts.enumerated() {
      let end = k + 1 < cuts.count ? cuts[k + 1] : nil
      let frames = index.framesNs.filter { $0 >= start && (end == nil || $0 < end!) }.count
      ranges.append(SegmentRange(index: k, count: parts, startNs: start, endNs: end, frames: frames))
    }
    self.clip = clip
    self.frames = index.framesNs.count
    self.durationNs = span
    self.ranges = ranges
  }

  /// Reads the keyframes of `path` and plans `parts` ranges.
  static func make(_ path: String, parts: Int) throws -> SegmentPlan {
    let index = try KeyframeIndex.scan(path)
    return try SegmentPlan(index: index, parts: parts, clip: try clipFingerprint(path), path: path)
  }

  var json: [String: Any] {
    [
      "clip": clip, "frames": frames, "duration": Double(durationNs) / 1e9, "parts": ranges.count,
      "ranges": ranges.map { range -> [String: Any] in
        var entry: [String: Any] = [
          "segment": "\(range.index)/\(range.count)", "index": range.index, "frames": range.frames,
          "start": Double(range.startNs) / 1e9, "start_ns": range.startNs,
        ]
        entry["end"] = range.endNs.map { Double($0) / 1e9 } ?? NSNull()
        entry["end_ns"] = range.endNs.map { $0 as Any } ?? NSNull()
        return entry
      },
    ]
  }
}

private func absDiff(_ a: UInt64, _ b: UInt64) -> UInt64 { a > b ? a - b : b - a }

/// What tells one clip from another wherever it is stored: FNV-1a over its size and its first and
/// last MiB (paths differ between hosts; reading the whole file twice per part would cost time).
func clipFingerprint(_ path: String) throws -> String {
  guard let handle = FileHandle(forReadingAtPath: path) else { throw LauncherError.noInput("input is not readable: \(path)") }
  defer { try? handle.close() }
  let size = try handle.seekToEnd()
  var hash: UInt64 = 0xcbf2_9ce4_8422_2325
  func mix(_ bytes: some Sequence<UInt8>) { for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 } }
  mix(withUnsafeBytes(of: size.littleEndian) { Array($0) })
  try handle.seek(toOffset: 0)
  mix(try handle.read(upToCount: 1 << 20) ?? Data())
  if size > 1 << 20 {
    try handle.seek(toOffset: max(1 << 20, size - (1 << 20)))
    mix(try handle.readToEnd() ?? Data())
  }
  return String(format: "%016llx", hash)
}
