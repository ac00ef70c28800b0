// backdrop camera: live matting from a V4L2 device or any source description, to a window and/or
// a file, with a bounded batch timeout; prints the latency it measured.
import ArgumentParser
import CGStreamer
import Foundation

struct Camera: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Live background removal from a camera to a window and/or a file.",
    discussion: """
      Stops at Ctrl-C (the file is finalised), after --duration seconds, or when the source ends. \
      Prints the latency it measured: time inside the matting element and age of each frame when \
      it leaves it (capture to matte), median / 95th percentile / maximum.
      """)

  @Option(name: .long, help: "V4L2 camera device.")
  var device: String = "/dev/video0"

  @Option(name: .long, help: ArgumentHelp("Any GStreamer source description instead of the camera, e.g. \"videotestsrc is-live=true\".", valueName: "DESCRIPTION"))
  var source: String?

  @Option(name: .shortAndLong, help: "Also record to this file (.webm or .mp4).")
  var output: String?

  @Flag(name: .long, inversion: .prefixedNo, help: "Show a window (default: when a display is available).")
  var window: Bool?

  @Option(name: .long, help: ArgumentHelp("Backdrop: none, green, color:#RRGGBB, image:PATH or blur[:STRENGTH] (default blur).", valueName: "BACKDROP"))
  var background: String = "blur"

  @Option(name: .long, help: "Longest wait, in milliseconds, before a partial batch is processed (bounds the latency batching adds).")
  var batchTimeout: Int = 50

  @Option(name: .long, help: "Stop after this many seconds.")
  var duration: Double?

  @Option(name: .long, help: "Inference device: auto, cpu, cuda or cuda:N.")
  var inferenceDevice: String = "auto"

  @OptionGroup var matte: MatteOptions
  @OptionGroup var outputOptions: OutputOptions

  func run() throws { try reportingErrors(json: outputOptions.json) { try live() } }

  private func live() throws {
    installSignalHandlers()  // SIGTERM/SIGHUP remove the unfinished recording
    try matte.validateValues()
    try validateInferenceDevice(inferenceDevice, option: "--inference-device")
    guard (0...60_000).contains(batchTimeout) else { throw LauncherError.usage("--batch-timeout \(batchTimeout): expected 0 to 60000 ms") }
    if let duration, duration <= 0 { throw LauncherError.usage("--duration \(duration): expected a positive number of seconds") }
    let target = try output.map { try OutputTarget($0, allowed: ["webm", "mp4"]) }
    if let target { TemporaryFiles.register([target.temporaryPath]) }
    let backdrop = try Background.parse(background)
    if target?.fileExtension == "mp4" && backdrop == .none {
      throw LauncherError.usage("MP4 cannot hold transparency: choose another --background, or record .webm")
    }
    let environment = ProcessInfo.processInfo.environment
    let hasDisplay = !(environment["DISPLAY"] ?? "").isEmpty || !(environment["WAYLAND_DISPLAY"] ?? "").isEmpty
    let showWindow = window ?? hasDisplay
    if showWindow && !hasDisplay { throw LauncherError.unavailable("no display for a window (DISPLAY and WAYLAND_DISPLAY are unset): record with -o FILE and --no-window") }
    guard showWindow || target != nil else {
      throw LauncherError.usage("nothing to show or record: give -o FILE, or run with a display")
    }
    if source == nil && !FileManager.default.fileExists(atPath: device) {
      throw LauncherError.noInput("camera not found: \(device) (pick another with --device, or give --source)")
    }
    let model = try ResolvedModel.resolve(matte.model)
    try target?.checkWritable()
    try GStreamer.setUp()
    let alpha = backdrop == .none
    if alpha && target?.fileExtension == "webm" && !GStreamer.hasElement("vp9alphaenc") {
      throw LauncherError.unavailable("a transparent WebM needs vp9alphaenc, which this backdrop plugin does not have")
    }

    let properties = try matte.properties(model: model, device: inferenceDevice, batchTimeoutMs: batchTimeout)
    func describe(location: String?) -> String {
      var description = (source ?? "v4l2src device=\(gstQuote(device))")
        // When the matte falls behind, the oldest waiting frames are dropped, not delayed.
        + " ! queue name=capture leaky=downstream max-size-buffers=2 max-size-bytes=0 max-size-time=0"
        + " ! videoconvert ! \(GStreamer.progressiveVideo) ! birefnetmatte name=matte \(properties.joined(separator: " ")) \(backdrop.properties.joined(separator: " "))"
        + (alpha ? " ! video/x-raw,format=A420" : " ! video/x-raw,format=I420")
      var branches: [String] = []
      if showWindow {
        branches.append(
          "queue leaky=downstream max-size-buffers=2 ! videoconvert"
            + (alpha ? " ! video/x-raw,format=RGBA ! alphaview layout=checkerboard ! videoconvert" : "")
            + " ! autovideosink sync=false")
      }
      if let target, let location {
        var encode: String
        switch (target.fileExtension, alpha) {
        case ("webm", true): encode = "vp9alphaenc ! webmalphamux"
        case ("webm", false): encode = "vp9enc deadline=1 cpu-used=8 lag-in-frames=0 row-mt=true target-bitrate=2000000 ! webmmux"
        default:
          encode = GStreamer.hasElement("x264enc")
            ? "x264enc tune=zerolatency speed-preset=veryfast ! h264parse ! mp4mux"
            : "openh264enc complexity=low ! h264parse ! mp4mux"
        }
        branches.append("queue ! videoconvert ! \(encode) ! filesink async=false location=\(gstQuote(location))")
      }
      if branches.count == 1 {
        description += " ! " + branches[0]
      } else {
        description += " ! tee name=t  " + branches.map { "t. ! \($0)" }.joined(separator: "  ")
      }
      return description
    }

    if outputOptions.printPipeline {
      let directory = try GStreamer.pluginOnlyDirectory()
      print("GST_PLUGIN_PATH=\(shellQuote(directory)) gst-launch-1.0 -e \(gstLaunchArguments(describe(location: target?.path)))")
      return
    }

    let description = describe(location: target?.temporaryPath)
    let pipeline = try Pipeline(description)
    let counter = FrameCounter()
    let meter = LatencyMeter(pipeline: pipeline.element)
    let capturedCounter = FrameCounter()
    if let queue = pipeline.child("capture") {
      capturedCounter.attach(to: queue, pad: "sink")
      gst_object_unref(queue)
    }
    if let element = pipeline.child("matte") {
      counter.attach(to: element)
      meter.attach(to: element)
      gst_object_unref(element)
    }
    let progress = ProgressReporter(options: outputOptions, durationNs: nil, frameDurationNs: nil)
    progress.started(input: source ?? device, output: target?.path ?? "window", pipeline: description)
    let start = Date()
    var stopping = false
    var interrupted = false
    var reportedLatency: UInt64?
    let outcome = pipeline.run(
      warning: { progress.warning($0) },
      onInterrupt: {
        interrupted = true
        stopping = true
        progress.note("stopping (Ctrl-C again to abort)")
      },
      tick: {
        if reportedLatency == nil, counter.frames > 0, let matte = pipeline.child("matte") {
          reportedLatency = latencyAnswer(of: matte)
          gst_object_unref(matte)
        }
        if let duration, !stopping, Date().timeIntervalSince(start) >= duration {
          stopping = true
          pipeline.sendEOS()
        }
        progress.update(frames: counter.frames, positionNs: counter.endNs)
      })
    gst_element_set_state(pipeline.element, GST_STATE_NULL)

    switch outcome {
    case .eos:
      try target?.commit()
      TemporaryFiles.clear()
    case .error(let text):
      target?.removeTemporary()
      progress.failed(text)
      if pipeline.failedOnModelFile { throw LauncherError.data("bad model file \(model.path): \(text.dropFirst(7))") }
      throw LauncherError.failed(text.hasPrefix("matte:") ? "the matting element failed with model \(model.path): \(text.dropFirst(7))" : text)
    case .aborted, .timedOut:
      target?.removeTemporary()
      throw LauncherError.aborted("aborted: nothing written")
    }
    let samples = meter.samples
    let captured = capturedCounter.frames
    if !outputOptions.quiet && counter.frames < captured {
      progress.note("\(captured - counter.frames) of \(captured) captured frames were dropped: the matte could not keep up")
    }
    let processing = summary(samples.processing), age = summary(samples.sinceCapture)
    if outputOptions.json {
      var event: [String: Any] = [
        "event": "latency", "frames": counter.frames, "captured_frames": captured, "batch_timeout_ms": batchTimeout,
      ]
      if let processing { event["matte_ms"] = ["median": processing.median, "p95": processing.p95, "max": processing.max] }
      if let age { event["capture_to_matte_ms"] = ["median": age.median, "p95": age.p95, "max": age.max] }
      if let reportedLatency { event["pipeline_latency_ms"] = Double(reportedLatency) / 1e6 }
      Console.event(event)
    }
    if !outputOptions.quiet, let processing {
      func text(_ s: (median: Double, p95: Double, max: Double)) -> String {
        String(format: "median %.1f ms, p95 %.1f ms, max %.1f ms", s.median, s.p95, s.max)
      }
      var line = "latency over \(samples.processing.count) frames: in the matte \(text(processing))"
      if let age { line += "; capture to matte \(text(age))" }
      if let reportedLatency { line += String(format: "; pipeline reports %.1f ms", Double(reportedLatency) / 1e6) }
      line += " (batch-timeout \(batchTimeout) ms)"
      Console.note(line)
    }
    progress.finished(frames: counter.frames, outputs: target.map { [($0.path, $0.size())] } ?? [], interrupted: interrupted)
  }
}

/// The latency `element` answers downstream (its src pad's LATENCY query: upstream's plus its
/// own), in nanoseconds, when live.
private func latencyAnswer(of element: UnsafeMutablePointer<GstElement>) -> UInt64? {
  guard let pad = gst_element_get_static_pad(element, "src"), let query = gst_query_new_latency() else { return nil }
  defer {
    gst_query_unref(query)
    gst_object_unref(pad)
  }
  guard gst_pad_query(pad, query) != 0 else { return nil }
  var live: gboolean = 0
  var minimum: GstClockTime = 0, maximum: GstClockTime = 0
  gst_query_parse_latency(query, &live, &minimum, &maximum)
  return live != 0 ? UInt64(minimum) : nil
}

