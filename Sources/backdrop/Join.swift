// backdrop join: the parts of `compose --segment K/N` back into one transparent WebM without
// re-encoding. Each part names its clip and range in its title; the pieces must be of one clip,
// of one kind (caps), and tile the clip without gaps or overlaps, or nothing is written. The
// VP9 blocks (alpha as GstVideoCodecAlphaMeta from matroskademux) and the audio packets go
// through `concat` into webmalphamux, each part shifted to its range's start, so the result has
// continuous timestamps and one Cues and Duration.
import ArgumentParser
import CGStreamer
import Foundation
import Synchronization

struct Join: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Join the parts written by `compose --segment K/N` into one file, without re-encoding.",
    discussion: """
      The pieces may be given in any order; they are put in the order of their ranges. A piece \
      from another clip, a missing piece, overlapping pieces or pieces of different size or codec \
      settings are refused with a message naming the piece, and no output is written.
      """)

  @Argument(help: "The parts (transparent WebM files written by `backdrop compose --segment`).")
  var pieces: [String]

  @Option(name: .shortAndLong, help: "The joined file (.webm).")
  var output: String

  @OptionGroup var outputOptions: OutputOptions

  func run() throws {
    try reportingErrors(json: outputOptions.json) { try join() }
  }

  private func join() throws {
    guard !pieces.isEmpty else { throw LauncherError.usage("give the parts to join") }
    let target = try OutputTarget(output, allowed: ["webm"])
    let paths = pieces.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
    for path in paths {
      try checkInput(path)
      if path == target.path { throw LauncherError.usage("the output would overwrite the piece \(path)") }
    }
    try GStreamer.setUp()
    let parts = try paths.map(JoinPiece.read)
    let ordered = try JoinPiece.checkedOrder(parts)
    try target.checkWritable()

    var description = "concat name=vc adjust-base=false ! queue ! webmalphamux name=mux ! filesink location=\(gstQuote(target.temporaryPath))"
    let hasAudio = ordered[0].audioCaps != nil
    if hasAudio { description += "  concat name=ac adjust-base=false ! queue ! mux.audio_0" }
    // The queues are linked to concat in the order of the ranges (concat plays its pads in the
    // order they were requested); the demuxers' pads are linked to them once they appear.
    for k in ordered.indices { description += "  queue name=vq\(k) ! vc." }
    if hasAudio { for k in ordered.indices { description += "  queue name=aq\(k) ! ac." } }
    for (k, piece) in ordered.enumerated() {
      description += "  filesrc location=\(gstQuote(piece.path)) ! matroskademux name=d\(k)  d\(k).video_0 ! vq\(k)."
      if hasAudio { description += "  d\(k).audio_0 ! aq\(k)." }
    }
    let pipeline: Pipeline
    do { pipeline = try Pipeline(description) } catch { target.removeTemporary(); throw error }
    // Each part's running time moves to its range's start: its first frame lands where the range
    // begins (plus a common shift so that no offset is negative; the muxer starts the file at 0).
    let shift = ordered.map(\.firstVideoNs).max() ?? 0
    for (k, piece) in ordered.enumerated() {
      let offset = Int64(piece.title.startNs) - Int64(piece.firstVideoNs) + Int64(shift)
      for name in ["vq\(k)"] + (hasAudio ? ["aq\(k)"] : []) {
        guard let queue = pipeline.child(name) else { continue }
        if let pad = gst_element_get_static_pad(queue, "src") {
          gst_pad_set_offset(pad, gint64(offset))
          gst_object_unref(pad)
        }
        gst_object_unref(queue)
      }
    }
    let counter = FrameCounter()
    if let concat = pipeline.child("vc") {
      counter.attach(to: concat)
      gst_object_unref(concat)
    }
    let expected = ordered.reduce(0) { $0 + $1.title.frames }
    let progress = ProgressReporter(options: outputOptions, durationNs: nil, frameDurationNs: nil)
    progress.started(input: ordered.map(\.path).joined(separator: " "), output: target.path, pipeline: description)
    let outcome = pipeline.run(warning: { progress.warning($0) }, tick: {
      let now = counter.snapshot
      progress.update(frames: now.frames, positionNs: now.endNs)
    })
    gst_element_set_state(pipeline.element, GST_STATE_NULL)
    switch outcome {
    case .eos:
      guard counter.frames == expected else {
        target.removeTemporary()
        throw LauncherError.data(
          "the pieces hold \(counter.frames) frames but their titles promise \(expected): a piece is truncated "
            + "(was a part interrupted?); nothing written")
      }
      try target.commit()
      progress.finished(frames: counter.frames, outputs: [(target.path, target.size())], interrupted: false)
    case .error(let text):
      target.removeTemporary()
      throw LauncherError.failed("joining failed: \(text)")
    case .aborted, .timedOut:
      target.removeTemporary()
      throw LauncherError.aborted("aborted: nothing written")
    }
  }
}

/// One piece given to `join`: its title, its streams' caps and its first video timestamp.
struct JoinPiece {
  var path: String
  var title: PartTitle
  var videoCaps: String
  var audioCaps: String?
  var firstVideoNs: UInt64

  var name: String { (path as NSString).lastPathComponent }
  var label: String { "\(name) (part \(title.index)/\(title.count), \(seconds(title.startNs))–\(title.endNs.map(seconds) ?? "end"))" }

  static func read(_ path: String) throws -> JoinPiece {
    let name = (path as NSString).lastPathComponent
    guard let text = try webmTitle(path), let title = PartTitle(text) else {
      throw LauncherError.data(
        "\(name) is not a part written by `backdrop compose --segment` (its WebM has no part title): "
          + "join only takes such parts")
    }
    let streams = try probeStreams(path)
    guard let video = streams.video else { throw LauncherError.data("\(name) has no video stream") }
    return JoinPiece(path: path, title: title, videoCaps: video, audioCaps: streams.audio, firstVideoNs: streams.firstVideoNs)
  }

  /// Puts the pieces in the order of their ranges and refuses any set that is not one clip tiled
  /// exactly once, naming the piece at fault.
  static func checkedOrder(_ pieces: [JoinPiece]) throws -> [JoinPiece] {
    let sorted = pieces.sorted { ($0.title.startNs, $0.title.index) < ($1.title.startNs, $1.title.index) }
    let reference = sorted[0]
    // The clip most pieces name is the clip; a piece naming another is the odd one out.
    let clips = Dictionary(grouping: sorted, by: \.title.clip)
    let clip = clips.max { $0.value.count < $1.value.count }!.key
    for piece in sorted where piece.title.clip != clip {
      throw LauncherError.data(
        "\(piece.label) comes from another clip (\(piece.title.clip)) than the other pieces (\(clip)); nothing written")
    }
    for piece in sorted where piece.title.count != reference.title.count {
      throw LauncherError.data(
        "\(piece.label) is one of \(piece.title.count) parts but \(reference.label) is one of \(reference.title.count): "
          + "the pieces come from different plans; nothing written")
    }
    for piece in sorted where piece.videoCaps != reference.videoCaps {
      throw LauncherError.data(
        "\(piece.name) has other video settings than \(reference.name) (\(piece.videoCaps) against \(reference.videoCaps)); nothing written")
    }
    for piece in sorted where piece.audioCaps != reference.audioCaps {
      let describe = { (caps: String?) in caps ?? "no audio" }
      throw LauncherError.data(
        "\(piece.name) has other audio than \(reference.name) (\(describe(piece.audioCaps)) against \(describe(reference.audioCaps))); nothing written")
    }
    if reference.title.startNs != 0 {
      throw LauncherError.data(
        "the first piece is missing: part 0/\(reference.title.count) (from 0 s) is not among the pieces, "
          + "which start with \(reference.label); nothing written")
    }
    for (previous, piece) in zip(sorted, sorted.dropFirst()) {
      guard let previousEnd = previous.title.endNs else {
        throw LauncherError.data("\(piece.label) overlaps \(previous.label), which runs to the end; nothing written")
      }
      if piece.title.startNs < previousEnd {
        throw LauncherError.data("\(piece.label) overlaps \(previous.label); nothing written")
      }
      if piece.title.startNs > previousEnd {
        throw LauncherError.data(
          "a piece is missing between \(previous.label) and \(piece.label) (\(seconds(previousEnd))–\(seconds(piece.title.startNs))): "
            + "part \(previous.title.index + 1)/\(previous.title.count) is not among the pieces; nothing written")
      }
    }
    if let last = sorted.last, last.title.endNs != nil {
      throw LauncherError.data(
        "the last piece is missing: nothing follows \(last.label) (part \(last.title.index + 1)/\(last.title.count) "
          + "is not among the pieces); nothing written")
    }
    return sorted
  }
}

private func seconds(_ ns: UInt64) -> String { String(format: "%.3f s", Double(ns) / 1e9) }

/// The Segment Info Title of a WebM file (EBML ID 0x7BA9 near the start), if it has one.
func webmTitle(_ path: String) throws -> String? {
  guard let handle = FileHandle(forReadingAtPath: path) else { throw LauncherError.noInput("cannot read \(path)") }
  defer { try? handle.close() }
  let bytes = [UInt8](try handle.read(upToCount: 64 * 1024) ?? Data())
  guard bytes.starts(with: [0x1A, 0x45, 0xDF, 0xA3]) else { return nil }  // not EBML
  var i = 0
  while i + 3 < bytes.count {
    defer { i += 1 }
    guard bytes[i] == 0x7B, bytes[i + 1] == 0xA9 else { continue }
    // The size: an EBML variable-length integer (its first byte's leading 1 gives its length).
    let first = bytes[i + 2]
    guard first != 0 else { continue }
    let length = first.leadingZeroBitCount + 1
    guard i + 2 + length <= bytes.count else { continue }
    var size = Int(first & (0xFF >> length))
    for byte in bytes[(i + 3)..<(i + 2 + length)] { size = size << 8 | Int(byte) }
    let start = i + 2 + length
    guard size > 0, start + size <= bytes.count,
      let text = String(bytes: bytes[start..<(start + size)], encoding: .utf8), text.hasPrefix(PartTitle.prefix)
    else { continue }
    return text
  }
  return nil
}

/// The caps of a WebM's first video and audio streams and its first video timestamp, from
/// matroskademux prerolled into fake sinks.
private func probeStreams(_ path: String) throws -> (video: String?, audio: String?, firstVideoNs: UInt64) {
  final class Collector: @unchecked Sendable {
    let pipeline: UnsafeMutablePointer<GstElement>
    let state = Mutex((video: String?.none, audio: String?.none, first: UInt64?.none))
    init(_ pipeline: UnsafeMutablePointer<GstElement>) { self.pipeline = pipeline }
  }
  let pipeline = try Pipeline("filesrc location=\(gstQuote(path)) ! matroskademux name=demux")
  guard let demux = pipeline.child("demux") else { throw LauncherError.failed("no matroskademux") }
  defer { gst_object_unref(demux) }
  let collector = Collector(pipeline.element)
  let padAdded: @convention(c) (UnsafeMutablePointer<GstElement>?, UnsafeMutablePointer<GstPad>?, gpointer?) -> Void = {
    _, pad, data in
    guard let pad, let data else { return }
    let collector = Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue()
    if let caps = gst_pad_get_current_caps(pad) {
      let text = String(cString: gst_caps_to_string(caps))
      gst_caps_unref(caps)
      let isVideo = text.hasPrefix("video/")
      collector.state.withLock {
        if isVideo && $0.video == nil { $0.video = text } else if !isVideo && $0.audio == nil { $0.audio = text }
      }
      if isVideo {
        gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, { _, info, data in
          guard let info, let data, let buffer = info.pointee.data?.assumingMemoryBound(to: GstBuffer.self) else {
            return GST_PAD_PROBE_REMOVE
          }
          let pts = UInt64(buffer.pointee.pts)
          Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue().state.withLock { if $0.first == nil { $0.first = pts } }
          return GST_PAD_PROBE_REMOVE
        }, data, nil)
      }
    }
    linkQueuedFakeSink(pad, in: collector.pipeline)
  }
  let retained = Unmanaged.passRetained(collector)
  defer { retained.release() }
  g_signal_connect_data(demux, "pad-added", unsafeBitCast(padAdded, to: GCallback.self), retained.toOpaque(), nil, GConnectFlags(0))
  gst_element_set_state(pipeline.element, GST_STATE_PAUSED)
  let types = GstMessageType(rawValue: GST_MESSAGE_ERROR.rawValue | GST_MESSAGE_ASYNC_DONE.rawValue | GST_MESSAGE_EOS.rawValue)
  let name = (path as NSString).lastPathComponent
  guard let message = gst_bus_timed_pop_filtered(pipeline.bus, 30 * 1_000_000_000, types) else {
    throw LauncherError.data("\(name): timed out while reading it")
  }
  defer { gst_message_unref(message) }
  if message.pointee.type == GST_MESSAGE_ERROR {
    throw LauncherError.data("\(name) is not a WebM file GStreamer can read (\(Pipeline.errorText(message)))")
  }
  gst_element_set_state(pipeline.element, GST_STATE_NULL)
  let state = collector.state.withLock { $0 }
  return (state.video, state.audio, state.first ?? 0)
}
