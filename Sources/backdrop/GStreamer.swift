// GStreamer through its C API: initialisation, finding the backdrop plugin, running a
// gst_parse_launch pipeline with its bus, and counting frames with pad probes.
import CGStreamer
import Foundation
import Synchronization

enum GStreamer {
  /// Whole frames from interlaced video; progressive video passes through untouched.
  ///
  /// Interlaced sources (broadcast, DV, camcorders, analogue capture cards) weave two moments line
  /// by line; the model would matte the combs on every moving edge, and web outputs are
  /// progressive. deinterlace makes one whole frame per frame (the frame rate stays), and its mode
  /// auto passes progressive video through. Its method greedyl (motion adaptive) keeps the
  /// timestamps; GStreamer 1.22's yadif repeats the first one (mp4mux then stops: "Buffer has no
  /// PTS") and its greedyh makes noise of planar formats.
  static let progressiveVideo = "deinterlace method=greedyl fields=top"

  /// Decoded video as a player shows it: progressive (see progressiveVideo) and upright.
  ///
  /// Phone footage is often stored sideways with an orientation (MP4's display matrix, read as the
  /// image-orientation tag) that players apply when showing it: the model must see the subject
  /// upright, and the outputs must show it as a player showed the input (WebM has no orientation
  /// field, and the muxers used here write none). videoflip follows the tag and passes frames
  /// through untouched without one. The videoconvert in front gives both a format they take,
  /// whatever the decoder outputs (also a passthrough when it does).
  static let shownVideo = "videoconvert ! \(progressiveVideo) ! videoflip video-direction=auto"

  /// `path` read and decoded, up to decodebin (name it, or link on from it). A JPEG goes through
  /// jpegparse first: decodebin plugs jpegdec alone, which leaves out the EXIF orientation that
  /// jpegparse reads (image-orientation), so a phone photo stored sideways would stay sideways.
  static func decodedFile(_ path: String) -> String {
    let jpeg = fileHead(path, 3)?.starts(with: [0xFF, 0xD8, 0xFF]) ?? false
    return "filesrc location=\(gstQuote(path)) ! \(jpeg ? "jpegparse ! " : "")decodebin"
  }

  /// The libgstbackdrop.so in use, once `setUp()` found it.
  nonisolated(unsafe) static var pluginFile: String?

  /// Initialises GStreamer and makes sure `birefnetmatte` is registered: from the registry
  /// (system plugin folder, GST_PLUGIN_PATH), else from $BACKDROP_PLUGIN, else from
  /// libgstbackdrop.so beside this program (a build folder) or in the GStreamer plugin folder of
  /// the prefix it is installed in (PREFIX/bin/backdrop: PREFIX/lib/<triplet>/gstreamer-1.0).
  static func setUp() throws {
    gst_init(nil, nil)
    if let file = registeredPluginFile("birefnetmatte") {
      pluginFile = file
      return
    }
    let prefix = executableDirectory().deletingLastPathComponent()
    let candidate = ProcessInfo.processInfo.environment["BACKDROP_PLUGIN"]
      ?? ([executableDirectory().appendingPathComponent("libgstbackdrop.so")]
        + ["lib/x86_64-linux-gnu/gstreamer-1.0", "lib/aarch64-linux-gnu/gstreamer-1.0", "lib/gstreamer-1.0", "lib64/gstreamer-1.0"]
        .map { prefix.appendingPathComponent($0).appendingPathComponent("libgstbackdrop.so") })
        .map(\.path).first { FileManager.default.fileExists(atPath: $0) }
      ?? executableDirectory().appendingPathComponent("libgstbackdrop.so").path
    guard FileManager.default.fileExists(atPath: candidate) else {
      throw LauncherError.unavailable(
        "the backdrop GStreamer plugin was not found: no birefnetmatte element is registered and "
          + "\(candidate) does not exist (build it with `swift build`, or set BACKDROP_PLUGIN)")
    }
    var error: UnsafeMutablePointer<GError>?
    let plugin = gst_plugin_load_file(candidate, &error)
    if let error {
      let text = String(cString: error.pointee.message)
      g_error_free(error)
      throw LauncherError.unavailable("could not load the backdrop plugin \(candidate): \(text)")
    }
    if let plugin { gst_object_unref(UnsafeMutableRawPointer(plugin)) }
    guard hasElement("birefnetmatte") else {
      throw LauncherError.unavailable("\(candidate) loaded but registers no birefnetmatte element")
    }
    pluginFile = URL(fileURLWithPath: candidate).resolvingSymlinksInPath().path
  }

  static func hasElement(_ name: String) -> Bool {
    guard let factory = gst_element_factory_find(name) else { return false }
    gst_object_unref(UnsafeMutableRawPointer(factory))
    return true
  }

  /// The file of the plugin that provides an element, when that element is registered.
  static func registeredPluginFile(_ element: String) -> String? {
    guard let factory = gst_element_factory_find(element) else { return nil }
    defer { gst_object_unref(UnsafeMutableRawPointer(factory)) }
    guard let plugin = gst_plugin_feature_get_plugin(factory) else { return nil }
    defer { gst_object_unref(UnsafeMutableRawPointer(plugin)) }
    guard let name = gst_plugin_get_filename(plugin) else { return nil }
    return URL(fileURLWithPath: String(cString: name)).resolvingSymlinksInPath().path
  }

  /// A folder that holds only a link to the plugin, for GST_PLUGIN_PATH in a printed gst-launch-1.0
  /// line (pointing GStreamer's scanner at the build folder would make it load libtorch).
  static func pluginOnlyDirectory() throws -> String {
    guard let pluginFile else { throw LauncherError.unavailable("the backdrop plugin is not loaded") }
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a of the plugin's path: one folder per build
    for byte in pluginFile.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    let directory = cacheDirectory().appendingPathComponent("plugin-\(String(hash, radix: 16))")
    let link = directory.appendingPathComponent("libgstbackdrop.so")
    do {
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
      if (try? FileManager.default.destinationOfSymbolicLink(atPath: link.path)) != pluginFile {
        try? FileManager.default.removeItem(at: link)
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: pluginFile)
      }
    } catch {
      throw LauncherError.cannotCreate("cannot create \(directory.path): \(error.localizedDescription)")
    }
    return directory.path
  }
}

/// $XDG_CACHE_HOME/backdrop (or ~/.cache/backdrop).
func cacheDirectory() -> URL {
  let environment = ProcessInfo.processInfo.environment
  let base = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
    ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache")
  return URL(fileURLWithPath: base).appendingPathComponent("backdrop")
}

/// The folder of this program's real file.
func executableDirectory() -> URL {
  let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
    ?? CommandLine.arguments[0]
  return URL(fileURLWithPath: path).resolvingSymlinksInPath().deletingLastPathComponent()
}

// MARK: - Pipelines

/// A parsed pipeline and its bus.
final class Pipeline {
  let element: UnsafeMutablePointer<GstElement>
  let bus: UnsafeMutablePointer<GstBus>

  init(_ description: String) throws {
    var error: UnsafeMutablePointer<GError>?
    let parsed = gst_parse_launch(description, &error)
    if let error {
      let text = String(cString: error.pointee.message)
      g_error_free(error)
      if let parsed { gst_object_unref(parsed) }
      throw LauncherError.failed("cannot build the pipeline: \(text)")
    }
    guard let parsed else { throw LauncherError.failed("cannot build the pipeline") }
    element = parsed
    bus = gst_element_get_bus(parsed)
  }

  deinit {
    gst_element_set_state(element, GST_STATE_NULL)
    gst_object_unref(bus)
    gst_object_unref(element)
  }

  func child(_ name: String) -> UnsafeMutablePointer<GstElement>? {
    let bin = UnsafeMutableRawPointer(element).assumingMemoryBound(to: GstBin.self)
    return gst_bin_get_by_name(bin, name)  // a new reference
  }

  func durationNs() -> UInt64? {
    var duration: gint64 = -1
    guard gst_element_query_duration(element, GST_FORMAT_TIME, &duration) != 0, duration > 0 else { return nil }
    return UInt64(duration)
  }

  /// Elements whose sink pads receive the EOS of a Ctrl-C; empty: the pipeline's sources.
  var eosTargets: [String] = []

  func sendEOS() {
    var sent = false
    for name in eosTargets {
      guard let target = child(name) else { continue }
      if let pad = gst_element_get_static_pad(target, "sink") {
        _ = gst_pad_send_event(pad, gst_event_new_eos())
        sent = true
        gst_object_unref(pad)
      }
      gst_object_unref(target)
    }
    if !sent { _ = gst_element_send_event(element, gst_event_new_eos()) }
  }

  enum Outcome { case eos, error(String), aborted, timedOut }

  /// Where the first ERROR came from: the element's name and the GError's domain and code.
  private(set) var failure: (source: String, domain: GQuark, code: Int32)?

  /// Whether the pipeline failed because the matting element could not use its model file (the
  /// element posts those as RESOURCE OPEN_READ: unreadable, corrupt, or breaking the contract).
  var failedOnModelFile: Bool { failure.map(Pipeline.isModelFileFailure) ?? false }

  static func isModelFileFailure(_ failure: (source: String, domain: GQuark, code: Int32)) -> Bool {
    failure.source == "matte" && failure.domain == gst_resource_error_quark()
      && failure.code == Int32(GST_RESOURCE_ERROR_OPEN_READ.rawValue)
  }

  /// A WARNING from gst_parse that a delayed link (to a pad a decoder adds later) was never made.
  static func isUnresolvedLink(_ message: UnsafeMutablePointer<GstMessage>) -> Bool {
    guard message.pointee.type == GST_MESSAGE_WARNING else { return false }
    let info = failureInfo(message)
    return info.domain == gst_parse_error_quark() && info.code == Int32(GST_PARSE_ERROR_DELAYED_LINK.rawValue)
  }

  /// The source element's name and the GError's domain and code of an ERROR (or WARNING) message.
  static func failureInfo(_ message: UnsafeMutablePointer<GstMessage>) -> (source: String, domain: GQuark, code: Int32) {
    var error: UnsafeMutablePointer<GError>?
    if message.pointee.type == GST_MESSAGE_WARNING {
      gst_message_parse_warning(message, &error, nil)
    } else {
      gst_message_parse_error(message, &error, nil)
    }
    defer { if let error { g_error_free(error) } }
    var source = "pipeline"
    if let src = message.pointee.src, let name = gst_object_get_name(src) {
      source = String(cString: name)
      g_free(name)
    }
    return (source, error?.pointee.domain ?? 0, error?.pointee.code ?? 0)
  }

  private func recordFailure(_ message: UnsafeMutablePointer<GstMessage>) -> String {
    if failure == nil { failure = Pipeline.failureInfo(message) }
    return Pipeline.errorText(message)
  }

  /// Sets the pipeline PLAYING and pumps its bus until EOS or an error. `tick` runs at least every
  /// `tickInterval` seconds. Ctrl-C presses count from `installSignalHandlers()`, so one pressed
  /// while the pipeline starts (the model loads in the state change) is not lost: the first press
  /// sends EOS (the files are finalised) once `hasOutput()` says a frame is out, and aborts before
  /// that (nothing worth keeping); a second press aborts. `stop` is asked as often: true aborts
  /// (serve's cancel button; serve ignores SIGINT, so no press is ever counted there).
  func run(tickInterval: Double = 0.25, timeout: Double? = nil, warning: (String) -> Void = { _ in },
           hasOutput: () -> Bool = { true }, stop: () -> Bool = { false },
           onInterrupt: () -> Void = {}, afterInterruptEOS: () -> Void = {}, tick: () -> Void = {}) -> Outcome {
    if interruptCount.load(ordering: .relaxed) > 0 { return .aborted }  // pressed before the start
    if gst_element_set_state(element, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE {
      // The failing element posts its ERROR while the state changes; a failure without one would
      // otherwise leave this loop waiting for a pipeline that never runs.
      guard let message = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR) else { return .error("the pipeline did not start") }
      defer { gst_message_unref(message) }
      return .error(recordFailure(message))
    }
    let start = Date()
    var lastTick = Date.distantPast
    var interruptsSeen = 0
    var eosSent = false
    let types = GstMessageType(rawValue: GST_MESSAGE_ERROR.rawValue | GST_MESSAGE_EOS.rawValue | GST_MESSAGE_WARNING.rawValue)
    while true {
      let interrupts = interruptCount.load(ordering: .relaxed)
      if interrupts > interruptsSeen {
        let presses = interrupts - interruptsSeen
        interruptsSeen = interrupts
        if eosSent || presses >= 2 || !hasOutput() { return .aborted }
        eosSent = true
        onInterrupt()
        sendEOS()
        afterInterruptEOS()
      }
      if stop() { return .aborted }
      if let timeout, Date().timeIntervalSince(start) > timeout { return .timedOut }
      if Date().timeIntervalSince(lastTick) >= tickInterval {
        lastTick = Date()
        tick()
      }
      guard let message = gst_bus_timed_pop_filtered(bus, 50_000_000, types) else { continue }
      defer { gst_message_unref(message) }
      switch message.pointee.type {
      case GST_MESSAGE_EOS: return .eos
      case GST_MESSAGE_ERROR: return .error(recordFailure(message))
      case _ where Pipeline.isUnresolvedLink(message):
        // A stream the description links (dec. ! queue name=vq) found nothing it could link to:
        // that branch never gets data, and the pipeline would wait for it for ever.
        return .error(recordFailure(message))
      default: warning(Pipeline.errorText(message))
      }
    }
  }

  /// "element: message" from an ERROR or WARNING message (its debug text only when the message
  /// alone says little).
  static func errorText(_ message: UnsafeMutablePointer<GstMessage>) -> String {
    var error: UnsafeMutablePointer<GError>?
    var debug: UnsafeMutablePointer<gchar>?
    if message.pointee.type == GST_MESSAGE_ERROR {
      gst_message_parse_error(message, &error, &debug)
    } else {
      gst_message_parse_warning(message, &error, &debug)
    }
    defer {
      if let error { g_error_free(error) }
      g_free(debug)
    }
    var source = "pipeline"
    if let src = message.pointee.src, let name = gst_object_get_name(src) {
      source = String(cString: name)
      g_free(name)
    }
    let text = error.map { String(cString: $0.pointee.message) } ?? "unknown error"
    return "\(source): \(launcherWording(text))"
  }

  /// The matting element's advice names its properties; the launcher's user sets them through
  /// options.
  static func launcherWording(_ text: String) -> String {
    text.replacingOccurrences(of: "set model-output=probability", with: "pass --model-output probability")
      .replacingOccurrences(of: "(try precision=fp32)", with: "(try --precision fp32)")
      .replacingOccurrences(of: #"inference-width and inference-height \(now (\d+x\d+)\) and batch-size"#,
                            with: "--size (now $1) and --batch-size", options: .regularExpression)
  }
}

// MARK: - Pad probes

/// Counts the buffers that leave a pad and remembers the end of the last one (stream time), from
/// the streaming thread; read from the bus loop.
final class FrameCounter: @unchecked Sendable {
  private struct State { var frames = 0; var endNs: UInt64 = 0 }
  private let state = Mutex(State())
  private var probeID: UInt = 0

  var frames: Int { state.withLock { $0.frames } }
  /// Frames and end time read together.
  var snapshot: (frames: Int, endNs: UInt64) { state.withLock { ($0.frames, $0.endNs) } }
  var endNs: UInt64 { state.withLock { $0.endNs } }

  fileprivate func add(pts: UInt64, duration: UInt64) {
    state.withLock {
      $0.frames += 1
      if pts != UInt64.max { $0.endNs = max($0.endNs, pts &+ (duration == UInt64.max ? 0 : duration)) }
    }
  }

  /// Counts the buffers leaving `element`'s src pad.
  func attach(to element: UnsafeMutablePointer<GstElement>, pad: String = "src") {
    guard let srcPad = gst_element_get_static_pad(element, pad) else { return }
    defer { gst_object_unref(srcPad) }
    probeID = gst_pad_add_probe(
      srcPad, GST_PAD_PROBE_TYPE_BUFFER,
      { _, info, data in
        guard let info, let data, let buffer = info.pointee.data?.assumingMemoryBound(to: GstBuffer.self) else {
          return GST_PAD_PROBE_OK
        }
        Unmanaged<FrameCounter>.fromOpaque(data).takeUnretainedValue()
          .add(pts: UInt64(buffer.pointee.pts), duration: UInt64(buffer.pointee.duration))
        return GST_PAD_PROBE_OK
      }, Unmanaged.passRetained(self).toOpaque(), { data in
        if let data { Unmanaged<FrameCounter>.fromOpaque(data).release() }
      })
  }
}

/// Drops the buffers that start at or after a limit (stream time), once a limit is set: after a
/// Ctrl-C the audio, decoded ahead of the slower video, stops where the video stops.
final class StreamLimiter: @unchecked Sendable {
  let limitNs = Atomic<UInt64>(UInt64.max)

  func attach(to element: UnsafeMutablePointer<GstElement>, pad name: String = "src") {
    guard let pad = gst_element_get_static_pad(element, name) else { return }
    defer { gst_object_unref(pad) }
    gst_pad_add_probe(
      pad, GST_PAD_PROBE_TYPE_BUFFER,
      { _, info, data in
        guard let info, let data, let buffer = info.pointee.data?.assumingMemoryBound(to: GstBuffer.self) else {
          return GST_PAD_PROBE_OK
        }
        let limit = Unmanaged<StreamLimiter>.fromOpaque(data).takeUnretainedValue().limitNs.load(ordering: .relaxed)
        let pts = UInt64(buffer.pointee.pts)
        return pts != UInt64.max && pts >= limit ? GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK
      }, Unmanaged.passRetained(self).toOpaque(), { data in
        if let data { Unmanaged<StreamLimiter>.fromOpaque(data).release() }
      })
  }
}

/// Measures, per frame, how long it spends inside an element (the monotonic time its buffer enters
/// the sink pad to the time the buffer with the same timestamp leaves the src pad) and how old it
/// is when it leaves (the pipeline's running time minus its timestamp: capture to matte output
/// for a live source).
final class LatencyMeter: @unchecked Sendable {
  private struct State {
    var arrivals: [UInt64: UInt64] = [:]
    var processing: [Double] = []
    var sinceCapture: [Double] = []
  }
  private let state = Mutex(State())
  private let pipeline: UnsafeMutablePointer<GstElement>

  init(pipeline: UnsafeMutablePointer<GstElement>) { self.pipeline = pipeline }

  /// Milliseconds inside the element, and from capture to leaving it.
  var samples: (processing: [Double], sinceCapture: [Double]) { state.withLock { ($0.processing, $0.sinceCapture) } }

  fileprivate func arrived(_ pts: UInt64) {
    let now = UInt64(g_get_monotonic_time())
    state.withLock { $0.arrivals[pts] = now }
  }

  fileprivate func left(_ pts: UInt64) {
    let now = UInt64(g_get_monotonic_time())
    var age: Double?
    if let clock = gst_element_get_clock(pipeline) {
      let running = Int64(gst_clock_get_time(clock)) - Int64(gst_element_get_base_time(pipeline))
      gst_object_unref(clock)
      if pts != UInt64.max { age = Double(running - Int64(pts)) / 1e6 }
    }
    state.withLock {
      if let start = $0.arrivals.removeValue(forKey: pts) { $0.processing.append(Double(now - start) / 1000) }
      if let age { $0.sinceCapture.append(age) }
    }
  }

  func attach(to element: UnsafeMutablePointer<GstElement>) {
    let callback: GstPadProbeCallback = { pad, info, data in
      guard let pad, let info, let data, let buffer = info.pointee.data?.assumingMemoryBound(to: GstBuffer.self) else {
        return GST_PAD_PROBE_OK
      }
      let meter = Unmanaged<LatencyMeter>.fromOpaque(data).takeUnretainedValue()
      let pts = UInt64(buffer.pointee.pts)
      if gst_pad_get_direction(pad) == GST_PAD_SINK { meter.arrived(pts) } else { meter.left(pts) }
      return GST_PAD_PROBE_OK
    }
    for name in ["sink", "src"] {
      guard let pad = gst_element_get_static_pad(element, name) else { continue }
      gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, callback, Unmanaged.passRetained(self).toOpaque()) { data in
        if let data { Unmanaged<LatencyMeter>.fromOpaque(data).release() }
      }
      gst_object_unref(pad)
    }
  }
}

/// Median, 95th percentile and maximum of some samples.
func summary(_ values: [Double]) -> (median: Double, p95: Double, max: Double)? {
  guard !values.isEmpty else { return nil }
  let sorted = values.sorted()
  return (sorted[sorted.count / 2], sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.95))], sorted.last!)
}

// MARK: - What a file holds

/// A file's first `count` bytes (fewer when it is shorter), to tell formats apart by their magic
/// before GStreamer reads the file; nil when it cannot be read.
func fileHead(_ path: String, _ count: Int) -> [UInt8]? {
  guard let file = FileHandle(forReadingAtPath: path) else { return nil }
  defer { try? file.close() }
  return (try? file.read(upToCount: count)).map { [UInt8]($0 ?? Data()) }
}

/// The streams of a media file, found by prerolling `filesrc ! decodebin` into fake sinks.
struct MediaInfo {
  var hasVideo = false
  var hasAudio = false
  var width = 0
  var height = 0
  /// Of the first frame as shown (after GStreamer.shownVideo).
  var pixelAspect: (Int, Int) = (1, 1)
  /// A picture file (JPEG, PNG, WebP...), one frame without a duration: written as a picture.
  var stillImage = false
  /// Of the first audio stream (0 when unknown).
  var audioChannels = 0
  var framerate: (Int, Int) = (0, 1)
  var durationNs: UInt64?

  var frameDurationNs: UInt64? {
    framerate.0 > 0 ? UInt64(1_000_000_000) * UInt64(framerate.1) / UInt64(framerate.0) : nil
  }

  private final class Collector: @unchecked Sendable {
    let pipeline: UnsafeMutablePointer<GstElement>
    var info = MediaInfo()
    /// Where the shown video ends (GStreamer.shownVideo ! fakesink): its caps have the size a
    /// player shows, the decoder's are the stored one.
    var shownSinkPad: UnsafeMutablePointer<GstPad>?
    var container: String?
    init(_ pipeline: UnsafeMutablePointer<GstElement>) { self.pipeline = pipeline }
    deinit { if let shownSinkPad { gst_object_unref(shownSinkPad) } }
  }

  /// The width and height a caps structure gives, when it gives both.
  private static func size(_ structure: UnsafeMutablePointer<GstStructure>) -> (Int, Int)? {
    var width: gint = 0, height: gint = 0
    guard gst_structure_get_int(structure, "width", &width) != 0, gst_structure_get_int(structure, "height", &height) != 0
    else { return nil }
    return (Int(width), Int(height))
  }

  /// The pixel-aspect-ratio a caps structure gives (1/1 when it gives none).
  private static func pixelAspect(_ structure: UnsafeMutablePointer<GstStructure>) -> (Int, Int) {
    var num: gint = 1, den: gint = 1
    guard gst_structure_get_fraction(structure, "pixel-aspect-ratio", &num, &den) != 0, num > 0, den > 0 else { return (1, 1) }
    return (Int(num), Int(den))
  }

  /// GStreamer 1.22's only GIF decoder (avdec_gif, plugged straight after typefind) never ends
  /// the stream: it repeats frames at time 0 forever, so a GIF would never finish.
  private static func refuseGIF(_ path: String, shown: String, name: String) throws {
    guard let head = fileHead(path, 6), head.elementsEqual("GIF87a".utf8) || head.elementsEqual("GIF89a".utf8) else { return }
    throw LauncherError.data(
      "\(shown) is a GIF, which GStreamer 1.22 here cannot read to its end (its GIF decoder repeats the frames forever): "
        + "convert it first, e.g. ffmpeg -i \(shellQuote(name)) -pix_fmt yuv420p \(shellQuote((name as NSString).deletingPathExtension + ".mp4"))")
  }

  /// Notes in `collector.container` what decodebin's typefind finds the file to be
  /// (video/quicktime, image/jpeg...). Its src pad's caps cannot be read afterwards: they are gone
  /// once a one-frame file is through.
  private static func watchType(_ decoder: UnsafeMutablePointer<GstElement>, _ collector: UnsafeMutableRawPointer) {
    guard let typefind = gst_bin_get_by_name(UnsafeMutableRawPointer(decoder).assumingMemoryBound(to: GstBin.self), "typefind")
    else { return }
    defer { gst_object_unref(typefind) }
    let haveType: @convention(c) (UnsafeMutablePointer<GstElement>?, guint, UnsafeMutablePointer<GstCaps>?, gpointer?) -> Void = {
      _, _, caps, data in
      guard let caps, let data, let structure = gst_caps_get_structure(caps, 0) else { return }
      Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue().container = String(cString: gst_structure_get_name(structure))
    }
    g_signal_connect_data(typefind, "have-type", unsafeBitCast(haveType, to: GCallback.self), collector, nil, GConnectFlags(0))
  }

  /// The probe's ERROR, ASYNC_DONE or EOS. A stream inside decodebin that stopped before the
  /// pipeline prerolled, with no word on the bus for a second, is a file that cannot be read: a
  /// demuxer's ERROR posted while decodebin was still starting it is kept inside decodebin (seen
  /// with truncated MP4s under load, where the wait used to run out after 30 s).
  private static func awaitPreroll(
    _ pipeline: Pipeline, decoder: UnsafeMutablePointer<GstElement>, shown: String, type: () -> String?
  ) throws -> UnsafeMutablePointer<GstMessage> {
    let types = GstMessageType(rawValue: GST_MESSAGE_ERROR.rawValue | GST_MESSAGE_ASYNC_DONE.rawValue | GST_MESSAGE_EOS.rawValue)
    let bin = UnsafeMutableRawPointer(decoder).assumingMemoryBound(to: GstBin.self)
    let deadline = Date().addingTimeInterval(30)
    var stoppedSince: Date?
    while true {
      if let message = gst_bus_timed_pop_filtered(pipeline.bus, 200_000_000, types) { return message }
      if Date() > deadline { throw LauncherError.data("\(shown): timed out while reading the file") }
      guard bd_bin_has_stopped_task(bin) != 0 else {
        stoppedSince = nil
        continue
      }
      let since = stoppedSince ?? Date()
      stoppedSince = since
      if Date().timeIntervalSince(since) >= 1 {
        let kind = type().map { " (it looks like \($0), but no stream in it could be read)" } ?? ""
        throw LauncherError.data("\(shown) is not a media file GStreamer can decode\(kind)")
      }
    }
  }

  /// Inspects `path` (which must exist and be readable); throws a clear error when GStreamer
  /// cannot decode it or it has no video stream. `uploadedAs` is the name the user gave the file
  /// where it is stored under another (serve's uploads): errors name it instead of the path.
  static func probe(_ path: String, uploadedAs: String? = nil) throws -> MediaInfo {
    let shown = uploadedAs.map { "'\($0)'" } ?? path
    try refuseGIF(path, shown: shown, name: uploadedAs ?? (path as NSString).lastPathComponent)
    let pipeline = try Pipeline("\(GStreamer.decodedFile(path)) name=dec")
    guard let decoder = pipeline.child("dec") else { throw LauncherError.failed("no decodebin") }
    defer { gst_object_unref(decoder) }
    let collector = Collector(pipeline.element)
    let padAdded: @convention(c) (UnsafeMutablePointer<GstElement>?, UnsafeMutablePointer<GstPad>?, gpointer?) -> Void = {
      _, pad, data in
      guard let pad, let data else { return }
      let collector = Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue()
      var firstRawVideo = false
      if let caps = gst_pad_get_current_caps(pad) ?? gst_pad_query_caps(pad, nil) {
        defer { gst_caps_unref(caps) }
        if let structure = gst_caps_get_structure(caps, 0) {
          let name = String(cString: gst_structure_get_name(structure))
          if name.hasPrefix("video/") && !collector.info.hasVideo {
            collector.info.hasVideo = true
            firstRawVideo = name == "video/x-raw"
            var num: gint = 0, den: gint = 1
            gst_structure_get_fraction(structure, "framerate", &num, &den)
            (collector.info.width, collector.info.height) = MediaInfo.size(structure) ?? (0, 0)
            collector.info.pixelAspect = MediaInfo.pixelAspect(structure)
            collector.info.framerate = (Int(num), Int(max(den, 1)))
          } else if name.hasPrefix("audio/") && !collector.info.hasAudio {
            collector.info.hasAudio = true
            var channels: gint = 0
            gst_structure_get_int(structure, "channels", &channels)
            collector.info.audioChannels = Int(channels)
          }
        }
      }
      // The first video stream goes through the shown-video chain, anything else into a fakesink.
      let sink: UnsafeMutablePointer<GstElement>? = firstRawVideo
        ? gst_parse_bin_from_description("\(GStreamer.shownVideo) ! fakesink name=shown", 1, nil)
          .map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: GstElement.self) }
        : gst_element_factory_make("fakesink", nil)
      guard let sink else { return }
      let bin = UnsafeMutableRawPointer(collector.pipeline).assumingMemoryBound(to: GstBin.self)
      gst_bin_add(bin, sink)
      gst_element_sync_state_with_parent(sink)
      if let sinkPad = gst_element_get_static_pad(sink, "sink") {
        gst_pad_link(pad, sinkPad)
        gst_object_unref(sinkPad)
      }
      if firstRawVideo, let fakesink = gst_bin_get_by_name(UnsafeMutableRawPointer(sink).assumingMemoryBound(to: GstBin.self), "shown") {
        collector.shownSinkPad = gst_element_get_static_pad(fakesink, "sink")
        gst_object_unref(fakesink)
      }
    }
    let retained = Unmanaged.passRetained(collector)
    defer { retained.release() }
    g_signal_connect_data(
      decoder, "pad-added", unsafeBitCast(padAdded, to: GCallback.self), retained.toOpaque(), nil, GConnectFlags(0))
    watchType(decoder, retained.toOpaque())

    gst_element_set_state(pipeline.element, GST_STATE_PAUSED)
    let message = try awaitPreroll(pipeline, decoder: decoder, shown: shown, type: { collector.container })
    defer { gst_message_unref(message) }
    if message.pointee.type == GST_MESSAGE_ERROR {
      let text = Pipeline.errorText(message)
      throw LauncherError.data("\(shown) is not a media file GStreamer can decode (\(text))")
    }
    var info = collector.info
    if let pad = collector.shownSinkPad, let caps = gst_pad_get_current_caps(pad) {
      defer { gst_caps_unref(caps) }
      if let structure = gst_caps_get_structure(caps, 0), let size = MediaInfo.size(structure) {
        (info.width, info.height) = size
        info.pixelAspect = MediaInfo.pixelAspect(structure)
      }
    }
    info.durationNs = pipeline.durationNs()
    info.stillImage = collector.container?.hasPrefix("image/") ?? false
    gst_element_set_state(pipeline.element, GST_STATE_NULL)
    guard info.hasVideo else {
      throw LauncherError.data("\(shown) has no video stream" + (info.hasAudio ? " (only audio)" : ""))
    }
    return info
  }
}
