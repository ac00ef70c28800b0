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
      blur; green by default; or --stacked-alpha), .mov is ProRes 4444 with alpha and PCM audio \
      (what video editors import; ProRes 422 HQ for a backdrop or the matte), and a pattern such \
      as frames/%05d.png writes an RGBA PNG sequence (no audio; the folder is created); a photo \
      (JPEG, PNG, WebP) gives one picture, -o NAME.png. Audio is \
      kept (Opus in WebM, AAC in MP4). The file is written beside \
      the target under a temporary name and renamed when complete. Ctrl-C finishes the file with \
      what was processed (before the first frame: nothing is kept); a second Ctrl-C, SIGTERM or \
      SIGHUP aborts and removes it.

      Exit status: 0 done, 64 bad usage (option value, output extension), 65 bad data (no video \
      stream, a model file the engine cannot use), 66 input or model missing or unreadable, 69 model \
      or plugin not available, 70 pipeline error, 73 output cannot be created, 74 write error, 130 \
      interrupted, 143 terminated (SIGTERM), 129 hung up (SIGHUP).
      """)

  @Argument(help: "Input video: any file GStreamer decodes (not GIF), an image sequence such as frames/%05d.png (PNG or JPEG, numbered from 0 or 1), or a photo; none with --batch.")
  var input: String?

  @Option(name: .long, help: ArgumentHelp("Frame rate of an image-sequence input (default 25).", valueName: "FPS"))
  var fps: String?

  @Option(name: .long, help: ArgumentHelp("Start at this time of the input: seconds (12.5) or [HH:]MM:SS(.s).", valueName: "TIME"))
  var start: String?

  @Option(name: .long, help: ArgumentHelp("Stop at this time of the input (same forms as --start).", valueName: "TIME"))
  var end: String?

  @Option(name: .shortAndLong, help: "Output file: .webm, .mp4, .mov (ProRes 4444 with alpha), a PNG pattern such as frames/%05d.png, or NAME.png for a photo (none with --batch).")
  var output: String?

  @Flag(name: .long, help: "With -o FILE.mp4: H.264 twice as tall, the colour on top and the alpha as grey below, for players without alpha (see examples/stacked-alpha/).")
  var stackedAlpha = false

  @Option(name: .long, help: ArgumentHelp("Constant quality instead of a bitrate: H.264 1-50, VP9 0-63 (lower is better).", valueName: "N"))
  var crf: Int?

  @Option(name: .long, help: ArgumentHelp("Video bitrate in bit/s, e.g. 4M or 800k (default: about 0.12 bit per pixel).", valueName: "RATE"))
  var bitrate: String?

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

  enum Container: String { case webm, mp4, mov, png }

  private func compose() throws {
    // First: a Ctrl-C, SIGTERM or SIGHUP at any moment from here on is handled (a press while the
    // model loads used to be lost).
    installSignalHandlers()
    guard let input, let output else { throw LauncherError.usage("give an INPUT and -o OUTPUT (or --batch LIST --out-dir DIR)") }
    try matte.validateValues()
    try validateInferenceDevice(device)
    let inputPath = URL(fileURLWithPath: input).standardizedFileURL.path
    let startNs = try start.map { try StreamTrim.parseTime($0, option: "--start") } ?? 0
    let endNs = try end.map { try StreamTrim.parseTime($0, option: "--end") }
    if let endNs, endNs <= startNs { throw LauncherError.usage("--end must be after --start") }
    let sequence = try ImageSequence.detect(inputPath, fps: fps)
    let target = try OutputTarget(output, allowed: ["webm", "mp4", "mov", "png"], sequences: true)
    let container = Container(rawValue: target.fileExtension)!
    let quality = try VideoQuality.parse(crf: crf, bitrate: bitrate, container: container)
    if stackedAlpha {
      if container != .mp4 { throw LauncherError.usage("--stacked-alpha writes H.264: use -o FILE.mp4") }
      if try matteOnly || (background.map(Background.parse) ?? .none) != .none {
        throw LauncherError.usage("--stacked-alpha keeps the picture and its alpha: leave out --background and --matte-only")
      }
      if preview != nil { throw LauncherError.usage("--stacked-alpha and --preview cannot be combined") }
    }
    var previewTarget: OutputTarget?
    if let preview {
      previewTarget = try OutputTarget(preview, allowed: ["mp4"])
      if previewTarget!.path == target.path { throw LauncherError.usage("--preview must name another file than -o") }
    }
    let backdrop = try background.map(Background.parse) ?? (container == .mp4 && !stackedAlpha ? .green : .none)
    if container == .mp4 && backdrop == .none && !matteOnly && !stackedAlpha {
      throw LauncherError.usage(
        "MP4 cannot hold transparency: choose --background green, color:#RRGGBB, image:PATH or blur, "
          + "--stacked-alpha, or write .webm or .mov")
    }
    if matteOnly && background != nil { throw LauncherError.usage("--matte-only writes the matte: leave out --background") }
    if sequence == nil { try checkInput(inputPath) }
    if inputPath == target.path { throw LauncherError.usage("the output would overwrite the input") }
    let model = try ResolvedModel.resolve(matte.model)

    try GStreamer.setUp()
    var media = try sequence?.mediaInfo() ?? MediaInfo.probe(inputPath)
    let window = try segmentOptions.resolve(input: inputPath, media: media)
    if window != nil && (start != nil || end != nil) {
      throw LauncherError.usage("--segment picks its own range: leave out --start and --end")
    }
    if let duration = media.durationNs {
      if startNs >= duration { throw LauncherError.usage("--start \(start ?? ""): the input is only \(formatDuration(Double(duration) / 1e9)) long") }
      media.durationNs = min(duration, endNs ?? duration) - startNs
    }
    try checkInputFitsOutput(media: media, container: container, target: target, preview: previewTarget != nil)
    let alpha = container != .mp4 && backdrop == .none && !matteOnly
    if alpha && container == .webm && !(GStreamer.hasElement("vp9alphaenc") && GStreamer.hasElement("webmalphamux")) {
      throw LauncherError.unavailable(
        "a transparent WebM needs the vp9alphaenc and webmalphamux elements, which this backdrop plugin "
          + "(\(GStreamer.pluginFile ?? "?")) does not have: rebuild it, or pick a --background")
    }
    var graph = ComposeGraph(
      input: inputPath, container: container, alpha: alpha, matteOnly: matteOnly, backdrop: backdrop,
      matteProperties: try matte.properties(model: model, device: device), hasAudio: media.hasAudio,
      width: media.width, height: media.height, framerate: media.framerate, withPreview: previewTarget != nil,
      pixelAspect: media.pixelAspect, stackedAlpha: stackedAlpha, quality: quality, muxTitle: window?.title,
      alphaLossless: segmentOptions.alphaLossless, singlePicture: container == .png && !target.isSequence)
    graph.sourceDescription = sequence?.sourceDescription
    if outputOptions.printPipeline {
      let description = graph.description(output: target.path, preview: previewTarget?.path)
      let directory = try GStreamer.pluginOnlyDirectory()
      print("GST_PLUGIN_PATH=\(shellQuote(directory)) gst-launch-1.0 -e \(gstLaunchArguments(description))")
      return
    }

    let outputs = [target] + (previewTarget.map { [$0] } ?? [])
    TemporaryFiles.register(outputs.map(\.temporaryPath))
    for output in outputs { try output.checkWritable() }
    let description = graph.description(output: target.temporaryPath, preview: previewTarget?.temporaryPath)
    let removeTemporaries = { for output in outputs { output.removeTemporary() } }

    let pipeline: Pipeline
    do { pipeline = try Pipeline(description) } catch { removeTemporaries(); throw error }
    // A part's title (its clip and range, for join): webmalphamux has it as a property in the
    // description; qtmux and mp4mux take it as the file's title tag.
    if let title = window?.title, container == .mov || container == .mp4, let mux = pipeline.child("mux") {
      MuxerTags.setTitle(title, on: mux)
      gst_object_unref(mux)
    }
    let counter = FrameCounter()       // frames out of the matte: progress
    let decoded = FrameCounter()       // frames into the video queue: where a Ctrl-C cuts
    let audioLimit = StreamLimiter()
    let trim = start != nil || end != nil ? StreamTrim(startNs: startNs, endNs: endNs) : nil
    let coverage = MatteCoverage()     // frames where the model found nobody: a warning at the end
    for (name, attach) in [
      ("matte", { counter.attach(to: $0); coverage.attach(to: $0) }), ("vq", { decoded.attach(to: $0, pad: "sink") }),
      ("aconv", { audioLimit.attach(to: $0) }),
      ("vq", { trim?.attach(to: $0) }), ("aq", { trim?.attach(to: $0) }),
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
    // Progress counts from where the written range starts (a segment, or --start).
    let origin = window?.startNs ?? startNs
    let progress = ProgressReporter(options: outputOptions, durationNs: progressDurationNs, frameDurationNs: media.frameDurationNs)
    progress.started(input: inputPath, output: target.path, pipeline: description)
    var interrupted = false
    // Ctrl-C ends the streams where they leave the decoder: the demuxer may pull from the file, so
    // an EOS sent to the source would not stop it.
    pipeline.eosTargets = ["vq", "aq"]
    let outcome = pipeline.run(
      warning: { progress.warning($0) },
      hasOutput: { counter.frames > 0 },
      onInterrupt: {
        interrupted = true
        audioLimit.limitNs.store(decoded.endNs, ordering: .relaxed)
        progress.note("interrupted: finishing \(target.path) with what was processed (Ctrl-C again to abort)")
      },
      afterInterruptEOS: { audioLimit.limitNs.store(decoded.endNs, ordering: .relaxed) },
      tick: {
        let now = counter.snapshot
        progress.update(frames: now.frames, positionNs: now.endNs > origin ? now.endNs - origin : 0)
      })
    gst_element_set_state(pipeline.element, GST_STATE_NULL)

    switch outcome {
    case .eos:
      for output in outputs { try output.commit() }
      if let warning = coverage.warning(model: model) { progress.warning(warning) }
      TemporaryFiles.clear()
      progress.finished(frames: counter.frames, outputs: outputs.map { ($0.path, $0.size()) }, interrupted: interrupted)
      if interrupted { throw ExitCode(130) }
    case .error(let text):
      removeTemporaries()
      let error = classify(text, pipeline: pipeline, model: model, outputs: outputs)
      progress.failed(error.message)
      throw error
    case .aborted:
      removeTemporaries()
      progress.failed("aborted")
      throw LauncherError.aborted(counter.frames == 0 ? "interrupted before the first frame: nothing written" : "aborted: nothing written")
    case .timedOut:
      removeTemporaries()
      throw LauncherError.failed("timed out")
    }
  }

  /// Refuses, by name, an input the output cannot hold: a picture (a photo: one frame, no
  /// duration) is written as one picture, and only a picture is (a video of it would last no time
  /// at all, and a video's frames need a sequence pattern to be numbered into); MP4 and QuickTime
  /// take pictures from 16×16; Opus and AAC take up to 8 channels.
  private func checkInputFitsOutput(media: MediaInfo, container: Container, target: OutputTarget, preview: Bool) throws {
    let name = (target.path as NSString).lastPathComponent
    if container == .png && !target.isSequence && !media.stillImage {
      throw LauncherError.usage(
        "\(name): PNG output of a video is a frame sequence: name the files with one number pattern, e.g. frames/%05d.png "
          + "(a single NAME.png is for a picture input)")
    }
    if (container == .mp4 || container == .mov || preview) && (media.width < 16 || media.height < 16) {
      // mp4mux and qtmux take pictures from 16×16 only.
      throw LauncherError.usage(
        "\(input ?? "the input") is \(media.width)x\(media.height): MP4 and QuickTime hold pictures of at least 16x16; "
          + "write .webm or a PNG sequence (frames/%05d.png)")
    }
    if media.hasAudio && media.audioChannels > 8 && (container == .webm || container == .mp4 || preview) {
      // Opus and AAC take up to 8 channels, and audioconvert cannot mix unpositioned ones down.
      throw LauncherError.usage(
        "\(input ?? "the input")'s audio has \(media.audioChannels) channels: Opus (WebM) and AAC (MP4) here take at most 8; "
          + "write .mov (PCM keeps them all)")
    }
    if media.stillImage && (container != .png || preview) {
      throw LauncherError.usage(
        "\(input ?? "the input") is a single picture: write the cutout as a picture, -o NAME.png "
          + "(RGBA, or the composite with --background); videos are made from videos or image sequences (frames/%05d.png)")
    }
  }

  /// Turns a pipeline error into the launcher's error: a model file the engine cannot use is bad
  /// data (65, with the engine's cause), an output that cannot be created is 73 and a failed write
  /// 74, naming the user's path (never the hidden temporary file); anything else is 70.
  private func classify(_ text: String, pipeline: Pipeline, model: ResolvedModel, outputs: [OutputTarget]) -> LauncherError {
    var text = text
    for output in outputs { text = text.replacingOccurrences(of: output.temporaryPath, with: output.path) }
    if pipeline.failedOnModelFile {
      return .data("bad model file \(model.path): \(text.dropFirst("matte: ".count))")
    }
    if let failure = pipeline.failure, failure.domain == gst_parse_error_quark() {
      return .failed("a stream of the input could not be linked to this output's encoder and muxer (\(text)): try another output format")
    }
    if text.hasPrefix("matte:") {
      return .failed("the matting element failed with model \(model.path): \(text.dropFirst("matte: ".count))")
    }
    if let failure = pipeline.failure, failure.domain == gst_resource_error_quark() {
      switch UInt32(failure.code) {
      case GST_RESOURCE_ERROR_OPEN_WRITE.rawValue, GST_RESOURCE_ERROR_OPEN_READ_WRITE.rawValue:
        return .cannotCreate("cannot create the output: \(text)")
      case GST_RESOURCE_ERROR_WRITE.rawValue, GST_RESOURCE_ERROR_NO_SPACE_LEFT.rawValue:
        return .io("cannot write the output: \(text)")
      default: break
      }
    }
    return .failed(text)
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
/// An image sequence (`sequences`, a pattern such as frames/%05d.png) is written in place.
struct OutputTarget {
  let path: String
  let fileExtension: String
  let temporaryPath: String
  var isSequence = false

  init(_ text: String, allowed: [String], sequences: Bool = false) throws {
    let url = URL(fileURLWithPath: text).standardizedFileURL
    path = url.path
    fileExtension = url.pathExtension.lowercased()
    guard allowed.contains(fileExtension) else {
      let ext = url.pathExtension.isEmpty ? "no extension" : "'.\(url.pathExtension)'"
      throw LauncherError.usage(
        "unknown output extension (\(ext)) for \(text): use " + allowed.map { ".\($0)" }.joined(separator: " or "))
    }
    // A PNG named with one number pattern is a frame sequence; a plain NAME.png is one picture (of
    // a picture input: compose checks that once it knows the input, see checkInputFitsOutput).
    if sequences && fileExtension == "png" && FramePattern.isPattern(url.lastPathComponent) {
      guard !url.deletingLastPathComponent().path.contains("%") else {
        throw LauncherError.usage(
          "\(text): PNG output is a frame sequence: name the files with one number pattern, e.g. frames/%05d.png")
      }
      isSequence = true
      temporaryPath = path
      return
    }
    temporaryPath = url.deletingLastPathComponent()
      .appendingPathComponent(".\(url.lastPathComponent).partial-\(getpid()).\(fileExtension)").path
  }

  var directory: String { (path as NSString).deletingLastPathComponent }

  /// The files of a sequence written so far (numbered from 0).
  var sequenceFiles: [String] {
    var files: [String] = []
    while FileManager.default.fileExists(atPath: FramePattern.file(path, files.count)) {
      files.append(FramePattern.file(path, files.count))
    }
    return files
  }

  func checkWritable() throws {
    if isSequence && !FileManager.default.fileExists(atPath: directory) {
      // The sequence's own folder is made for it; its parent must exist.
      let parent = (directory as NSString).deletingLastPathComponent
      guard FileManager.default.fileExists(atPath: parent) else {
        throw LauncherError.cannotCreate("output folder does not exist: \(parent)")
      }
      do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false) } catch {
        throw LauncherError.cannotCreate("cannot create the output folder \(directory): \(error.localizedDescription)")
      }
    }
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
    // access() says yes to root everywhere, and some folders refuse new files whatever the mode
    // (/proc, read-only mounts): create the temporary file now, so the error names the user's path.
    let fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      throw LauncherError.cannotCreate("cannot create \(path): \(String(cString: strerror(errno)))")
    }
    close(fd)
    unlink(temporaryPath)
  }

  func commit() throws {
    if isSequence {
      guard !sequenceFiles.isEmpty else { throw LauncherError.failed("the pipeline finished without writing \(FramePattern.file(path, 0))") }
      return
    }
    guard FileManager.default.fileExists(atPath: temporaryPath) else {
      throw LauncherError.failed("the pipeline finished without writing \(path)")
    }
    if rename(temporaryPath, path) != 0 {
      let reason = String(cString: strerror(errno))
      removeTemporary()
      throw LauncherError.cannotCreate("cannot move the finished file to \(path): \(reason)")
    }
  }

  func removeTemporary() {
    if isSequence {
      for file in sequenceFiles { try? FileManager.default.removeItem(atPath: file) }
      return
    }
    try? FileManager.default.removeItem(atPath: temporaryPath)
  }

  func size() -> Int64 {
    let files = isSequence ? sequenceFiles : [path]
    return files.reduce(0) { total, file in
      total + (((try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? NSNumber)?.int64Value ?? 0)
    }
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
  /// The first frame's pixel-aspect-ratio, which every frame keeps (see decodedVideo).
  var pixelAspect: (Int, Int) = (1, 1)
  var stackedAlpha = false
  var quality = VideoQuality.automatic
  /// Replaces `filesrc ! decodebin name=dec` (an image sequence); must end in an element named dec.
  var sourceDescription: String?
  /// The transparent WebM's title (a part's clip and range, see SegmentOptions).
  var muxTitle: String? = nil
  var alphaLossless = false
  /// PNG output of a picture input: one file, not a numbered sequence.
  var singlePicture = false

  /// The input's video as a player shows it, every frame at the first frame's size. Recordings
  /// from browsers and calls (MediaRecorder, WebRTC) change resolution mid-stream, and an output
  /// file has one: H.264 in MP4 kept only the first size's parameter sets (later frames would not
  /// decode) and ProRes stopped with a stream error. Later sizes are scaled to fit, the shape kept
  /// with black borders (the pixel-aspect-ratio fixed to the first frame's); at one size all along,
  /// videoscale passes the frames through.
  var decodedVideo: String {
    "dec. ! queue name=vq ! \(GStreamer.shownVideo) ! videoscale add-borders=true "
      + "! video/x-raw,width=\(width),height=\(height),pixel-aspect-ratio=\(pixelAspect.0)/\(pixelAspect.1) ! videoconvert"
  }

  /// A bitrate for the picture's size and rate (about 0.12 bit per pixel, at least 500 kbit/s).
  var videoBitrate: Int {
    if case .bitrate(let rate) = quality { return rate }
    let fps = framerate.0 > 0 ? Double(framerate.0) / Double(framerate.1) : 30
    return max(500_000, Int(Double(width * height) * fps * 0.12))
  }

  /// H.264 in 4:2:0 wants even sizes (x264enc refuses odd ones, openh264enc crops): an odd last
  /// column or row is cropped.
  func h264(_ bitrate: Int, height: Int? = nil) -> String {
    let height = height ?? self.height
    let crop = width % 2 == 1 || height % 2 == 1 ? "videocrop right=\(width % 2) bottom=\(height % 2) ! " : ""
    if GStreamer.hasElement("x264enc") {
      let rate: String
      if case .crf(let crf) = quality { rate = "pass=qual quantizer=\(crf)" } else { rate = "bitrate=\(bitrate / 1000)" }
      return crop + "x264enc speed-preset=faster \(rate) ! video/x-h264,profile=high ! h264parse"
    }
    return crop + "openh264enc complexity=low rate-control=bitrate bitrate=\(bitrate) ! h264parse"
  }

  /// vp9alphaenc rate control: constant quality (end-usage q) or a target bitrate.
  var vp9AlphaRateControl: String {
    if case .crf(let crf) = quality { return "end-usage=q cq-level=\(crf)" }
    return "end-usage=vbr target-bitrate=\(videoBitrate)"
  }

  /// vp9enc: GStreamer 1.22's has no end-usage q (only vbr, cbr and cq, which a bitrate steers),
  /// so constant quality is the quantizer held at the level. lag-in-frames=0: in realtime mode
  /// (deadline=1) with its default lookahead of 25, libvpx gave back fewer frames than it was given
  /// at the end of variable-frame-rate input (57 in, 52 out), and the lookahead buys nothing there
  /// (the same PSNR at the same size).
  var vp9Encoder: String {
    let rate: String
    if case .crf(let crf) = quality { rate = "min-quantizer=\(crf) max-quantizer=\(crf)" } else { rate = "end-usage=vbr target-bitrate=\(videoBitrate)" }
    return "vp9enc deadline=1 cpu-used=8 row-mt=true lag-in-frames=0 \(rate)"
  }

  var aacEncoder: String { GStreamer.hasElement("avenc_aac") ? "avenc_aac" : "voaacenc" }

  func description(output: String, preview: String?) -> String {
    var parts: [String] = []
    parts.append(sourceDescription ?? "\(GStreamer.decodedFile(input)) name=dec")
    var video = "\(decodedVideo) ! birefnetmatte name=matte " + matteProperties.joined(separator: " ")
    if stackedAlpha {
      video = stackedAlphaVideo(encoder: h264(videoBitrate, height: height * 2))
    } else if container == .png {
      video += matteOnly ? " ! video/x-raw,format=GRAY8" : alpha ? " ! video/x-raw,format=RGBA" : " \(backdrop.properties.joined(separator: " ")) ! video/x-raw,format=RGB"
    } else if container == .mov {
      video += matteOnly ? " ! video/x-raw,format=GRAY8" : alpha ? " ! video/x-raw,format=RGBA" : " \(backdrop.properties.joined(separator: " "))"
    } else if matteOnly {
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
      video += " ! vp9alphaenc \(vp9AlphaRateControl)\(alphaLossless ? " alpha-lossless=true" : "")"
        + " ! webmalphamux name=mux\(muxTitle.map { " title=\(gstQuote($0))" } ?? "")"
    case .webm:
      video += " ! \(vp9Encoder) ! webmmux name=mux"
    case .mp4 where stackedAlpha:
      break
    case .mp4:
      video += " ! \(h264(videoBitrate)) ! mp4mux name=mux"
    case .mov:
      video += " ! \(proresEncoder(alpha: alpha)) ! qtmux name=mux"
    case .png:
      // One file per frame, numbered from 0; the sink writes straight into the folder.
      video += singlePicture ? " ! pngenc ! filesink location=\(gstQuote(output))"
        : " ! pngenc ! multifilesink index=0 location=\(gstQuote(output))"
      parts.append(video)
      if hasAudio { parts.append("dec. ! queue name=aq ! fakesink sync=false") }  // PNG frames have no sound
      return parts.joined(separator: "  ")
    }
    // With a tee, async=false: a sink must not wait for the others to preroll. One branch's
    // encoder may hold many frames (x264enc's lookahead) before its file gets a byte, while the
    // other branch's sink, prerolled, blocks the tee: the pipeline would never start. A single
    // sink keeps the default: with async=false gst-launch-1.0 sometimes never sees the EOS.
    video += " ! filesink\(withTee ? " async=false" : "") location=\(gstQuote(output))"
    parts.append(video)
    if let preview {
      var branch = "vt. ! queue ! videoconvert"
      if alpha { branch += " ! video/x-raw,format=RGBA ! alphaview layout=checkerboard ! videoconvert" }
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
      switch container {
      case .webm: audio += " ! opusenc ! mux."
      case .mov: audio += " ! audioconvert ! audio/x-raw,format=S16LE ! mux."  // PCM, as editors expect
      default: audio += " ! \(aacEncoder) ! mux."
      }
      parts.append(audio)
      if withTee { parts.append("at. ! \(roomy) ! audioconvert ! \(aacEncoder) ! pmux.") }
    }
    return parts.joined(separator: "  ")
  }
}
