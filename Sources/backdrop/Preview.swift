// backdrop preview: a contact sheet PNG for a person to judge a model on a clip: N frames, each
// as original | matte | composite over a checkerboard.
import ArgumentParser
import CGStreamer
import Foundation

struct Preview: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Make a contact sheet: N frames as original | matte | composite over a checkerboard.",
    discussion: "Frames are taken evenly over the clip (the middle of N equal parts).")

  @Argument(help: "Input video.")
  var input: String

  @Option(name: .shortAndLong, help: "Output PNG.")
  var output: String

  @Option(name: .long, help: "Number of frames (rows).")
  var frames: Int = 4

  @Option(name: .long, help: "Width of each picture in the sheet, in pixels (the height keeps the aspect ratio).")
  var tileWidth: Int = 320

  @Option(name: .long, help: "Inference device: auto, cpu, cuda or cuda:N.")
  var device: String = "auto"

  @OptionGroup var matte: MatteOptions
  @Flag(name: .shortAndLong, help: "Print nothing but errors.")
  var quiet = false

  func run() throws { try reportingErrors { try makeSheet() } }

  static let gap = 4

  private func makeSheet() throws {
    try matte.validateValues()
    try validateInferenceDevice(device)
    guard (1...100).contains(frames) else { throw LauncherError.usage("--frames \(frames): expected 1 to 100") }
    guard (16...4096).contains(tileWidth) else { throw LauncherError.usage("--tile-width \(tileWidth): expected 16 to 4096") }
    let inputPath = URL(fileURLWithPath: input).standardizedFileURL.path
    let target = try OutputTarget(output, allowed: ["png"])
    try checkInput(inputPath)
    let model = try ResolvedModel.resolve(matte.model)
    try target.checkWritable()
    try GStreamer.setUp()
    let media = try MediaInfo.probe(inputPath)

    // Even sizes, aspect ratio kept.
    let width = tileWidth & ~1
    let height = max(2, Int((Double(width) * Double(media.height) / Double(max(media.width, 1))).rounded()) & ~1)
    var properties = try matte.properties(model: model, device: device)
    properties.removeAll { $0.hasPrefix("batch-size=") }
    let description =
      "\(GStreamer.decodedFile(inputPath)) ! \(GStreamer.shownVideo) ! videoconvert ! videoscale ! "
      + "video/x-raw,width=\(width),height=\(height),pixel-aspect-ratio=1/1 ! "
      + "birefnetmatte name=matte batch-size=1 \(properties.joined(separator: " ")) ! video/x-raw,format=RGBA ! "
      + "fakesink name=sink sync=false enable-last-sample=true"
    let pipeline = try Pipeline(description)
    guard let sink = pipeline.child("sink") else { throw LauncherError.failed("no sink") }
    defer { gst_object_unref(sink) }

    gst_element_set_state(pipeline.element, GST_STATE_PAUSED)
    try waitForPreroll(pipeline, what: "starting")
    let duration = pipeline.durationNs() ?? media.durationNs ?? 0
    // A photo is one frame: one row, not the same row --frames times.
    let frames = media.stillImage ? 1 : self.frames
    var tiles: [[UInt8]] = []
    for index in 0..<frames {
      let time = duration > 0 ? UInt64(Double(duration) * (Double(index) + 0.5) / Double(frames)) : 0
      if duration > 0 {
        let flags = GstSeekFlags(rawValue: GST_SEEK_FLAG_FLUSH.rawValue | GST_SEEK_FLAG_ACCURATE.rawValue)
        guard gst_element_seek_simple(pipeline.element, GST_FORMAT_TIME, flags, gint64(time)) != 0 else {
          throw LauncherError.failed("cannot seek in \(inputPath)")
        }
        try waitForPreroll(pipeline, what: "seeking to \(formatDuration(Double(time) / 1e9))")
      }
      let sample = UnsafeMutableRawPointer(sink).assumingMemoryBound(to: GstBaseSink.self)
      guard let last = gst_base_sink_get_last_sample(sample) else {
        throw LauncherError.failed("no frame at \(formatDuration(Double(time) / 1e9))")
      }
      defer { gst_sample_unref(last) }
      tiles.append(try rgba(of: last, width: width, height: height))
      if !quiet && Console.stderrIsTerminal { Console.status("frame \(index + 1)/\(frames)") }
    }
    gst_element_set_state(pipeline.element, GST_STATE_NULL)
    if !quiet && Console.stderrIsTerminal { Console.clearStatus() }

    let sheet = Self.compose(tiles: tiles, width: width, height: height)
    try Self.writePNG(sheet.pixels, width: sheet.width, height: sheet.height, to: target)
    if !quiet {
      Console.note("\(frames) frame\(frames == 1 ? "" : "s") (original | matte | composite) → \(target.path) (\(sheet.width)x\(sheet.height), \(formatBytes(target.size())))")
    }
  }

  private func waitForPreroll(_ pipeline: Pipeline, what: String) throws {
    let types = GstMessageType(rawValue: GST_MESSAGE_ERROR.rawValue | GST_MESSAGE_ASYNC_DONE.rawValue)
    guard let message = gst_bus_timed_pop_filtered(pipeline.bus, 120 * 1_000_000_000, types) else {
      throw LauncherError.failed("timed out \(what)")
    }
    defer { gst_message_unref(message) }
    if message.pointee.type == GST_MESSAGE_ERROR {
      let text = Pipeline.errorText(message)
      if Pipeline.isModelFileFailure(Pipeline.failureInfo(message)) {
        throw LauncherError.data("bad model file: \(text.dropFirst(7))")
      }
      throw LauncherError.failed(text.hasPrefix("matte:") ? "the matting element failed: \(text.dropFirst(7))" : text)
    }
  }

  private func rgba(of sample: OpaquePointer, width: Int, height: Int) throws -> [UInt8] {
    guard let buffer = gst_sample_get_buffer(sample), let caps = gst_sample_get_caps(sample) else {
      throw LauncherError.failed("empty frame")
    }
    var info = GstVideoInfo()
    var frame = GstVideoFrame()
    guard gst_video_info_from_caps(&info, caps) != 0, gst_video_frame_map(&frame, &info, buffer, GST_MAP_READ) != 0 else {
      throw LauncherError.failed("cannot read a frame")
    }
    defer { gst_video_frame_unmap(&frame) }
    let stride = Int(frame.info.stride.0)
    let source = frame.data.0!.assumingMemoryBound(to: UInt8.self)
    var pixels = [UInt8](repeating: 0, count: width * height * 4)
    for y in 0..<min(height, Int(info.height)) {
      for x in 0..<min(width, Int(info.width)) * 4 { pixels[(y * width) * 4 + x] = source[y * stride + x] }
    }
    return pixels
  }

  /// Rows of original | matte | composite over a 16-pixel grey checkerboard, on a dark grey sheet.
  static func compose(tiles: [[UInt8]], width: Int, height: Int) -> (pixels: [UInt8], width: Int, height: Int) {
    let sheetWidth = 3 * width + 4 * gap
    let sheetHeight = tiles.count * height + (tiles.count + 1) * gap
    var sheet = [UInt8](repeating: 0, count: sheetWidth * sheetHeight * 4)
    for i in stride(from: 0, to: sheet.count, by: 4) {
      sheet[i] = 40; sheet[i + 1] = 40; sheet[i + 2] = 40; sheet[i + 3] = 255
    }
    for (row, tile) in tiles.enumerated() {
      let top = gap + row * (height + gap)
      for y in 0..<height {
        for x in 0..<width {
          let s = (y * width + x) * 4
          let (r, g, b, a) = (Int(tile[s]), Int(tile[s + 1]), Int(tile[s + 2]), Int(tile[s + 3]))
          let checker = ((x / 16) + (y / 16)) % 2 == 0 ? 204 : 153
          let blend = { (c: Int) in UInt8((c * a + checker * (255 - a) + 127) / 255) }
          let columns: [(UInt8, UInt8, UInt8)] = [
            (UInt8(r), UInt8(g), UInt8(b)), (UInt8(a), UInt8(a), UInt8(a)), (blend(r), blend(g), blend(b)),
          ]
          for (column, color) in columns.enumerated() {
            let d = ((top + y) * sheetWidth + gap + column * (width + gap) + x) * 4
            sheet[d] = color.0; sheet[d + 1] = color.1; sheet[d + 2] = color.2; sheet[d + 3] = 255
          }
        }
      }
    }
    return (sheet, sheetWidth, sheetHeight)
  }

  /// Encodes RGBA pixels as PNG with GStreamer's pngenc (through a raw file and rawvideoparse),
  /// under a temporary name renamed when complete.
  static func writePNG(_ pixels: [UInt8], width: Int, height: Int, to target: OutputTarget) throws {
    let raw = target.temporaryPath + ".rgba"
    defer { try? FileManager.default.removeItem(atPath: raw) }
    guard FileManager.default.createFile(atPath: raw, contents: Data(pixels)) else {
      throw LauncherError.cannotCreate("cannot write \(raw)")
    }
    let pipeline = try Pipeline(
      "filesrc location=\(gstQuote(raw)) blocksize=\(pixels.count) ! rawvideoparse format=rgba width=\(width) "
        + "height=\(height) framerate=1/1 ! videoconvert ! video/x-raw,format=RGB ! pngenc ! "
        + "filesink location=\(gstQuote(target.temporaryPath))")
    switch pipeline.run() {
    case .eos: try target.commit()
    case .error(let text):
      target.removeTemporary()
      throw LauncherError.failed("writing the PNG: \(text)")
    default:
      target.removeTemporary()
      throw LauncherError.aborted("aborted")
    }
  }
}
