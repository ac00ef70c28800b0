// What `join` knows of each piece before it writes anything, and the one set of checks every
// container goes through: each piece is read with its own container's demuxer (its title tag,
// its streams' caps, its first video timestamp), then the set must be of the output's container,
// of one clip and plan, of one kind (caps) and tile the clip without gaps or overlaps.
import CGStreamer
import Foundation
import Synchronization

/// One piece given to `join`: its container, title, streams' caps and first video timestamp.
struct JoinPiece {
  var path: String
  var container: PartContainer
  var title: PartTitle
  var videoCaps: String
  var audioCaps: String?
  var firstVideoNs: UInt64

  var name: String { (path as NSString).lastPathComponent }
  var label: String { "\(name) (part \(title.index)/\(title.count), \(seconds(title.startNs))–\(title.endNs.map(seconds) ?? "end"))" }

  static func read(_ path: String) throws -> JoinPiece {
    let name = (path as NSString).lastPathComponent
    let notAPart = "\(name) is not a part written by `backdrop compose --segment`"
    guard let container = try PartContainer.sniff(path) else {
      throw LauncherError.data("\(notAPart) (it is not a WebM, QuickTime or MP4 file): join only takes such parts")
    }
    let streams = try probeStreams(path, demuxer: container.demuxer)
    guard let text = streams.titles.first(where: { $0.hasPrefix(PartTitle.prefix) }), let title = PartTitle(text) else {
      throw LauncherError.data("\(notAPart) (it has no part title): join only takes such parts")
    }
    guard let video = streams.video else { throw LauncherError.data("\(name) has no video stream") }
    return JoinPiece(path: path, container: container, title: title, videoCaps: video, audioCaps: streams.audio,
                     firstVideoNs: streams.firstVideoNs)
  }

  /// Puts the pieces in the order of their ranges and refuses any set that is not one clip tiled
  /// exactly once in `container`, naming the piece at fault.
  static func checkedOrder(_ pieces: [JoinPiece], container: PartContainer, output: String) throws -> [JoinPiece] {
    for piece in pieces where piece.container != container {
      throw LauncherError.data(
        "\(piece.name) is \(piece.container.label) part but the output \((output as NSString).lastPathComponent) is to be \(container.label) file: "
          + "join pieces of one container into a file of the same kind; nothing written")
    }
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

/// The caps of a file's first video and audio streams, its first video timestamp and the titles
/// among its tags, read by `demuxer` into queued fake sinks.
///
/// A bare demuxer does not hold the pipeline's state change while it finds its streams (decodebin
/// and parsebin do), so ASYNC_DONE is no sign that every stream has been seen: it can come after
/// the video sink's preroll and before the audio pad exists, or be lost to a sink added while the
/// pipeline is still changing state. Reading is done when the demuxer said `no-more-pads` and every
/// one of its pads has passed its first buffer or EOS; the tags travel ahead of the first buffer.
private func probeStreams(_ path: String, demuxer: String) throws -> (video: String?, audio: String?, firstVideoNs: UInt64, titles: [String]) {
  final class Collector: @unchecked Sendable {
    struct State {
      var video: String?
      var audio: String?
      var first: UInt64?
      /// The address of the first video stream's pad (compared only), whose first PTS counts.
      var videoPad: UInt?
      var titles: [String] = []
      var pads = 0
      var padsDone = 0
      var noMorePads = false
      var complete: Bool { noMorePads && padsDone == pads }
    }
    let pipeline: UnsafeMutablePointer<GstElement>
    let state = Mutex(State())
    init(_ pipeline: UnsafeMutablePointer<GstElement>) { self.pipeline = pipeline }
  }
  let pipeline = try Pipeline("filesrc location=\(gstQuote(path)) ! \(demuxer) name=demux")
  guard let demux = pipeline.child("demux") else { throw LauncherError.failed("no \(demuxer)") }
  defer { gst_object_unref(demux) }
  let collector = Collector(pipeline.element)
  let padAdded: @convention(c) (UnsafeMutablePointer<GstElement>?, UnsafeMutablePointer<GstPad>?, gpointer?) -> Void = {
    _, pad, data in
    guard let pad, let data else { return }
    let collector = Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue()
    var text: String?
    if let caps = gst_pad_get_current_caps(pad) {
      text = String(cString: gst_caps_to_string(caps))
      gst_caps_unref(caps)
    }
    let isVideo = text?.hasPrefix("video/") ?? false
    collector.state.withLock {
      $0.pads += 1
      if isVideo && $0.video == nil {
        $0.video = text
        $0.videoPad = UInt(bitPattern: pad)
      } else if !isVideo && $0.audio == nil {
        $0.audio = text
      }
    }
    // Watches the pad until its first buffer (or EOS): the tags before it, the video's first PTS.
    let mask = GstPadProbeType(rawValue: GST_PAD_PROBE_TYPE_BUFFER.rawValue | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM.rawValue)
    gst_pad_add_probe(pad, mask, { pad, info, data in
      guard let pad, let info, let data else { return GST_PAD_PROBE_REMOVE }
      let collector = Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue()
      if info.pointee.type.rawValue & GST_PAD_PROBE_TYPE_BUFFER.rawValue != 0 {
        let buffer = info.pointee.data?.assumingMemoryBound(to: GstBuffer.self)
        collector.state.withLock {
          if $0.videoPad == UInt(bitPattern: pad), let buffer { $0.first = UInt64(buffer.pointee.pts) }
          $0.padsDone += 1
        }
        return GST_PAD_PROBE_REMOVE
      }
      guard let event = info.pointee.data?.assumingMemoryBound(to: GstEvent.self) else { return GST_PAD_PROBE_OK }
      switch event.pointee.type {
      case GST_EVENT_TAG:
        let titles = eventTitles(event)
        collector.state.withLock { $0.titles += titles }
        return GST_PAD_PROBE_OK
      case GST_EVENT_EOS:
        collector.state.withLock { $0.padsDone += 1 }
        return GST_PAD_PROBE_REMOVE
      default:
        return GST_PAD_PROBE_OK
      }
    }, data, nil)
    linkQueuedFakeSink(pad, in: collector.pipeline)
  }
  let noMorePads: @convention(c) (UnsafeMutablePointer<GstElement>?, gpointer?) -> Void = { _, data in
    guard let data else { return }
    Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue().state.withLock { $0.noMorePads = true }
  }
  let retained = Unmanaged.passRetained(collector)
  defer { retained.release() }
  g_signal_connect_data(demux, "pad-added", unsafeBitCast(padAdded, to: GCallback.self), retained.toOpaque(), nil, GConnectFlags(0))
  g_signal_connect_data(demux, "no-more-pads", unsafeBitCast(noMorePads, to: GCallback.self), retained.toOpaque(), nil, GConnectFlags(0))
  gst_element_set_state(pipeline.element, GST_STATE_PAUSED)
  defer { gst_element_set_state(pipeline.element, GST_STATE_NULL) }
  let name = (path as NSString).lastPathComponent
  let deadline = Date().addingTimeInterval(30)
  while !collector.state.withLock({ $0.complete }) {
    guard Date() < deadline else { throw LauncherError.data("\(name): timed out while reading it") }
    // Errors end the wait at once; otherwise look again every 20 ms.
    if let message = gst_bus_timed_pop_filtered(pipeline.bus, 20_000_000, GST_MESSAGE_ERROR) {
      defer { gst_message_unref(message) }
      throw LauncherError.data("\(name) is not a file GStreamer can read (\(Pipeline.errorText(message)))")
    }
  }
  let state = collector.state.withLock { $0 }
  return (state.video, state.audio, state.first ?? 0, state.titles)
}

/// The title in a TAG event.
private func eventTitles(_ event: UnsafeMutablePointer<GstEvent>) -> [String] {
  var list: UnsafeMutablePointer<GstTagList>?
  gst_event_parse_tag(event, &list)
  guard let list else { return [] }
  var text: UnsafeMutablePointer<gchar>?
  guard gst_tag_list_get_string(list, "title", &text) != 0, let text else { return [] }
  defer { g_free(text) }
  return [String(cString: text)]
}
