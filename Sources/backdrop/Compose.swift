// backdrop compose: a file in, a transparent WebM, a composite (WebM or MP4) or the matte out,
// optionally with an MP4 preview from the same pass. Audio is kept.
import ArgumentParser
import CGStreamer
import Foundation

struct Compose: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Remove or replace the background of a video file.",
    discussion: """
      The output's extension picks the format: .webm is VP9 (with alpha for --background none, \
      the default), .mp4 is H.264 with AAC audio (needs a backdrop: green, a colour, an image or \
      blur; green by default). Audio is kept (Opus in WebM, AAC in MP4). The file is written beside \
      the target under a temporary name and renamed when complete. Ctrl-C finishes the file with \
      what was processed; a second Ctrl-C aborts and removes it.

      Exit status: 0 done, 64 bad usage (option value, output extension), 65 bad data (no video \
      stream, not a model file), 66 input or model missing or unreadable, 69 model or plugin not \
      available, 70 pipeline error, 73 output not writable, 130 interrupted.
      """)

  @Argument(help: "Input video: any file GStreamer decodes (none with --batch).")
  var input: String?

  @Option(name: .shortAndLong, help: "Output file: .webm or .mp4 (none with --batch).")
  var output: String?

  @Option(name: .long, help: ArgumentHelp("none (alpha, WebM only), green, color:#RRGGBB, image:PATH or blur[:STRENGTH].", valueName: "BACKDROP"))
  var background: String?

  @Flag(name: .long, help: "Write the matte itself (white subject on black) instead of the picture.")
  var matteOnly = false

  @Option(name: .long, help: ArgumentHelp("Also write an H.264 MP4 preview on a backdrop in the same pass (a checkerboard under a transparent result).", valueName: "FILE.mp4"))
  var preview: String?

  @Option(name: .long, help: "Inference device: auto, cpu, cuda or cuda:N.")
  var device: String = "auto"

  @OptionGroup var matte: MatteOptions
  @OptionGroup var outputOptions: OutputOptions
  @OptionGroup(title: "Parts of a clip (scale-out)") var segmentOptions: SegmentOptions
  @OptionGroup(title: "Many clips") var batchOptions: BatchOptions

  func run() throws {
    try reportingErrors(json: outputOptions.json) {
      if batchOptions.batch != nil || batchOptions.outDir != nil {
        guard input == nil, output == nil else {
          throw LauncherError.usage("--batch takes its inputs from the list and writes to --out-dir: leave out INPUT and -o")
        }
        return try BatchMode.run(options: batchOptions, quiet: outputOptions.quiet)
      }
      try compose()
    }
  }

  enum Container: String { case webm, mp4 }

  private func compose() throws {
    guard let input, let output else { throw LauncherError.usage("give an INPUT and -o OUTPUT (or --batch LIST --out-dir DIR)") }
    try matte.validateValues()
    try validateInferenceDevice(device)
    let inputPath = URL(fileURLWithPath: input).standardizedFileURL.path
    let target = try OutputTarget(output, allowed: ["webm", "mp4"])
    let container = Container(rawValue: target.fileExtension)!
    var previewTarget: OutputTarget?
    if let preview {
      previewTarget = try OutputTarget(preview, allowed: ["mp4"])
      if previewTarget!.path == target.path { throw LauncherError.usage("--preview must name another file than -o") }
    }
    let backdrop = try background.map(Background.parse) ?? (container == .mp4 ? .green : .none)
    if container == .mp4 && backdrop == .none && !matteOnly {
      throw LauncherError.usage(
        "MP4 cannot hold transparency: choose --background green, color:#RRGGBB, image:PATH or blur, or write .webm")
    }
    if matteOnly && background != nil { throw LauncherError.usage("--matte-only writes the matte: leave out --background") }
    try checkInput(inputPath)
    if inputPath == target.path { throw LauncherError.usage("the output would overwrite the input") }
    let model = try ResolvedModel.resolve(matte.model)

    try GStreamer.setUp()
    let media = try MediaInfo.probe(inputPath)
    let window = try segmentOptions.resolve(input: inputPath, media: media)
    let alpha = container == .webm && backdrop == .none && !matteOnly
    if alpha && !(GStreamer.hasElement("vp9alphaenc") && GStreamer.hasElement("webmalphamux")) {
      throw LauncherError.unavailable(
        "a transparent WebM needs the vp9alphaenc and webmalphamux elements, which this backdrop plugin "
          + "(\(GStreamer.pluginFile ?? "?")) does not have: rebuild it, or pick a --background")
    }
    let graph = ComposeGraph(
      input: inputPath, container: container, alpha: alpha, matteOnly: matteOnly, backdrop: backdrop,
      matteProperties: try matte.properties(model: model, device: device), hasAudio: media.hasAudio,
      width: media.width, height: media.height, framerate: media.framerate, withPreview: previewTarget != nil,
      muxTitle: window?.title, alphaLossless: segmentOptions.alphaLossless)

    if outputOptions.printPipeline {
      let description = graph.description(output: target.path, preview: previewTarget?.path)
      let directory = try GStreamer.pluginOnlyDirectory()
      print("GST_PLUGIN_PATH=\(shellQuote(directory)) gst-launch-1.0 -e \(gstLaunchArguments(description))")
      return
    }

    let outputs = [target] + (previewTarget.map { [$0] } ?? [])
    for output in outputs { try output.checkWritable() }
    let description = graph.description(output: target.temporaryPath, preview: previewTarget?.temporaryPath)
    let removeTemporaries = { for output in outputs { output.removeTemporary() } }

    let pipeline: Pipeline
    do { pipeline = try Pipeline(description) } catch { removeTemporaries(); throw error }
    let counter = FrameCounter()       // frames out of the matte: progress
    let decoded = FrameCounter()       // frames into the video queue: where a Ctrl-C cuts
    let audioLimit = StreamLimiter()
    for (name, attach) in [
      ("matte", { counter.attach(to: $0) }), ("vq", { decoded.attach(to: $0, pad: "sink") }),
      ("aconv", { audioLimit.attach(to: $0) }),
    ] as [(String, (UnsafeMutablePointer<GstElement>) -> Void)] {
      if let element = pipeline.child(name) {
        attach(element)
        gst_object_unref(element)
      }
    }
    if let window {
      do { try window.prepare(pipeline) } catch { removeTemporaries(); throw error }
    }
    // A part reports progress through its own range.
    let progressDurationNs = window.map { UInt64($0.frames) * (media.frameDurationNs ?? 0) } ?? media.durationNs
    let windowStartNs = window?.startNs ?? 0
    let progress = ProgressReporter(options: outputOptions, durationNs: progressDurationNs, frameDurationNs: media.frameDurationNs)
    progress.started(input: inputPath, output: target.path, pipeline: description)
    installInterruptHandler()
    var interrupted = false
    // Ctrl-C ends the streams where they leave the decoder: the demuxer may pull from the file, so
    // an EOS sent to the source would not stop it.
    pipeline.eosTargets = ["vq", "aq"]
    let outcome = pipeline.run(
      warning: { progress.warning($0) },
      onInterrupt: {
        interrupted = true
        audioLimit.limitNs.store(decoded.endNs, ordering: .relaxed)
        progress.note("interrupted: finishing \(target.path) with what was processed (Ctrl-C again to abort)")
      },
      afterInterruptEOS: { audioLimit.limitNs.store(decoded.endNs, ordering: .relaxed) },
      tick: {
        let now = counter.snapshot
        progress.update(frames: now.frames, positionNs: now.endNs > windowStartNs ? now.endNs - windowStartNs : 0)
      })
    gst_element_set_state(pipeline.element, GST_STATE_NULL)

    switch outcome {
    case .eos:
      for output in outputs { try output.commit() }
      progress.finished(frames: counter.frames, outputs: outputs.map { ($0.path, $0.size()) }, interrupted: interrupted)
      if interrupted { throw ExitCode(130) }
    case .error(let text):
      removeTemporaries()
      let message = explain(text, model: model)
      progress.failed(message)
      throw LauncherError.failed(message)
    case .aborted:
      removeTemporaries()
      progress.failed("aborted")
      throw LauncherError.aborted("aborted: nothing written")
    case .timedOut:
      removeTemporaries()
      throw LauncherError.failed("timed out")
    }
  }

  /// Adds what a user needs to an element's error text.
  private func explain(_ text: String, model: ResolvedModel) -> String {
    if text.hasPrefix("matte:") {
      return "the matting element failed with model \(model.path): \(text.dropFirst("matte: ".count))"
    }
    return text
  }
}

/// An input must exist, be a file and be readable.
func checkInput(_ path: String) throws {
  var isDirectory: ObjCBool = false
  guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
    throw LauncherError.noInput("input not found: \(path)")
  }
  guard !isDirectory.boolValue else { throw LauncherError.noInput("input is a folder, not a file: \(path)") }
  guard FileManager.default.isReadableFile(atPath: path) else { throw LauncherError.noInput("input is not readable: \(path)") }
}

/// An output file: written under a temporary name in the same folder, renamed when complete.
struct OutputTarget {
  let path: String
  let fileExtension: String
  let temporaryPath: String

  init(_ text: String, allowed: [String]) throws {
    let url = URL(fileURLWithPath: text).standardizedFileURL
    path = url.path
    fileExtension = url.pathExtension.lowercased()
    guard allowed.contains(fileExtension) else {
      let ext = url.pathExtension.isEmpty ? "no extension" : "'.\(url.pathExtension)'"
      throw LauncherError.usage(
        "unknown output extension (\(ext)) for \(text): use " + allowed.map { ".\($0)" }.joined(separator: " or "))
    }
    temporaryPath = url.deletingLastPathComponent()
      .appendingPathComponent(".\(url.lastPathComponent).partial-\(getpid()).\(fileExtension)").path
  }

  var directory: String { (path as NSString).deletingLastPathComponent }

  func checkWritable() throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
      throw LauncherError.cannotCreate("output folder does not exist: \(directory)")
    }
    guard access(directory, W_OK) == 0 else {
      throw LauncherError.cannotCreate("output folder is not writable: \(directory)")
    }
    var isDirectoryTarget: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectoryTarget), isDirectoryTarget.boolValue {
      throw LauncherError.cannotCreate("output is a folder: \(path)")
    }
  }

  func commit() throws {
    guard FileManager.default.fileExists(atPath: temporaryPath) else {
      throw LauncherError.failed("the pipeline finished without writing \(path)")
    }
    if rename(temporaryPath, path) != 0 {
      let reason = String(cString: strerror(errno))
      removeTemporary()
      throw LauncherError.cannotCreate("cannot move the finished file to \(path): \(reason)")
    }
  }

  func removeTemporary() { try? FileManager.default.removeItem(atPath: temporaryPath) }

  func size() -> Int64 {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
  }
}

/// The pipeline `compose` runs, as a gst-launch description.
struct ComposeGraph {
  var input: String
  var container: Compose.Container
  var alpha: Bool
  var matteOnly: Bool
  var backdrop: Background
  var matteProperties: [String]
  var hasAudio: Bool
  var width: Int
  var height: Int
  var framerate: (Int, Int)
  var withPreview: Bool
  /// The transparent WebM's title (a part's clip and range, see SegmentOptions).
  var muxTitle: String? = nil
  var alphaLossless = false

  /// A bitrate for the picture's size and rate (about 0.12 bit per pixel, at least 500 kbit/s).
  var videoBitrate: Int {
    let fps = framerate.0 > 0 ? Double(framerate.0) / Double(framerate.1) : 30
    return max(500_000, Int(Double(width * height) * fps * 0.12))
  }

  /// H.264 in 4:2:0 wants even sizes (x264enc refuses odd ones, openh264enc crops): an odd last
  /// column or row is cropped.
  func h264(_ bitrate: Int) -> String {
    let crop = width % 2 == 1 || height % 2 == 1 ? "videocrop right=\(width % 2) bottom=\(height % 2) ! " : ""
    return crop + (GStreamer.hasElement("x264enc")
      ? "x264enc speed-preset=faster bitrate=\(bitrate / 1000) ! video/x-h264,profile=high ! h264parse"
      : "openh264enc complexity=low rate-control=bitrate bitrate=\(bitrate) ! h264parse")
  }

  var aacEncoder: String { GStreamer.hasElement("avenc_aac") ? "avenc_aac" : "voaacenc" }

  func description(output: String, preview: String?) -> String {
    var parts: [String] = []
    parts.append("filesrc location=\(gstQuote(input)) ! decodebin name=dec")
    var video = "dec. ! queue name=vq ! videoconvert ! birefnetmatte name=matte " + matteProperties.joined(separator: " ")
    if matteOnly {
      video += " ! video/x-raw,format=GRAY8 ! videoconvert ! video/x-raw,format=I420"
    } else if alpha {
      video += " ! video/x-raw,format=A420"
    } else {
      video += " \(backdrop.properties.joined(separator: " ")) ! video/x-raw,format=I420"
    }
    let withTee = preview != nil
    if withTee { video += " ! tee name=vt ! queue" }
    switch container {
    case .webm where alpha:
      video += " ! vp9alphaenc target-bitrate=\(videoBitrate)\(alphaLossless ? " alpha-lossless=true" : "")"
        + " ! webmalphamux name=mux\(muxTitle.map { " title=\(gstQuote($0))" } ?? "")"
    case .webm:
      video += " ! vp9enc deadline=1 cpu-used=8 row-mt=true end-usage=vbr target-bitrate=\(videoBitrate) ! webmmux name=mux"
    case .mp4:
      video += " ! \(h264(videoBitrate)) ! mp4mux name=mux"
    }
    // With a tee, async=false: a sink must not wait for the others to preroll. One branch's
    // encoder may hold many frames (x264enc's lookahead) before its file gets a byte, while the
    // other branch's sink, prerolled, blocks the tee: the pipeline would never start. A single
    // sink keeps the default: with async=false gst-launch-1.0 sometimes never sees the EOS.
    video += " ! filesink\(withTee ? " async=false" : "") location=\(gstQuote(output))"
    parts.append(video)
    if let preview {
      var branch = "vt. ! queue ! videoconvert"
      if alpha { branch += " ! video/x-raw,format=AYUV ! compositor background=checker ! videoconvert" }
      branch += " ! video/x-raw,format=I420 ! \(h264(videoBitrate)) ! mp4mux name=pmux ! filesink async=false location=\(gstQuote(preview))"
      parts.append(branch)
    }
    if hasAudio {
      // Roomy audio queues (30 s): the matte and the video encoders (x264enc's lookahead) hold
      // video back for a while, and neither the demuxer nor the audio tee may block meanwhile,
      // or the muxers, waiting for video, never get it.
      let roomy = "queue max-size-buffers=0 max-size-bytes=0 max-size-time=30000000000"
      var audio = "dec. ! \(roomy) name=aq ! audioconvert name=aconv ! audioresample"
      if withTee { audio += " ! tee name=at ! \(roomy)" }
      audio += container == .webm ? " ! opusenc ! mux." : " ! \(aacEncoder) ! mux."
      parts.append(audio)
      if withTee { parts.append("at. ! \(roomy) ! audioconvert ! \(aacEncoder) ! pmux.") }
    }
    return parts.joined(separator: "  ")
  }
}
