// Shared set-up for the element tests: GStreamer initialised once with the plugin registered
// statically, paths of the designed models, frame builders and pixel readers.
import CBackdropShim
import CGStreamer
import CGStreamerCheck
import Foundation
import XCTest

enum TestEnvironment {
  /// The package root (two levels above this file's folder).
  static let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

  static func designedModel(_ name: String) -> String {
    packageRoot.appendingPathComponent("models/designed/\(name).pt").path
  }

  /// Where `swift build` put the plugin and the engine (the folder of the test bundle).
  static let buildDirectory: URL = {
    if let path = ProcessInfo.processInfo.environment["BACKDROP_BUILD_DIR"] { return URL(fileURLWithPath: path) }
    var url = Bundle.main.bundleURL
    while url.path != "/" && !FileManager.default.fileExists(atPath: url.appendingPathComponent("libgstbackdrop.so").path) {
      url = url.deletingLastPathComponent()
    }
    if url.path == "/" {
      for candidate in ["debug", "release"] {
        let dir = packageRoot.appendingPathComponent(".build/\(candidate)")
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("libgstbackdrop.so").path) { return dir }
      }
    }
    return url
  }()

  /// Initialises GStreamer once and registers the plugin from the code linked into the tests.
  static let initialised: Bool = {
    let registry = packageRoot.appendingPathComponent(".build/test-registry.bin").path
    setenv("GST_REGISTRY", registry, 1)
    setenv("BACKDROP_ENGINE", buildDirectory.appendingPathComponent("libbackdrop-torch.so").path, 0)
    gst_init(nil, nil)
    gst_plugin_backdrop_register()
    return true
  }()

  static func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("backdrop-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }
}

/// Sets any property from its string form, as gst-launch-1.0 would.
func setProperty(_ element: UnsafeMutablePointer<GstElement>, _ name: String, _ value: String) {
  gst_util_set_object_arg(UnsafeMutableRawPointer(element).assumingMemoryBound(to: GObject.self), name, value)
}

/// An RGB(A) colour in 0...255.
struct RGB: Equatable, CustomStringConvertible {
  var r: Int, g: Int, b: Int
  var description: String { "(\(r),\(g),\(b))" }
  static let dark = RGB(r: 20, g: 20, b: 20)
  static let bright = RGB(r: 230, g: 230, b: 230)
}

/// A test picture: a dark field with a bright rectangle (the "subject"), in packed RGBA.
struct TestPicture {
  var width = 64
  var height = 48
  var subject = (x: 16, y: 12, width: 32, height: 24)
  var background: (Int, Int) -> RGB = { _, _ in .dark }
  var foreground = RGB.bright

  func isSubject(_ x: Int, _ y: Int) -> Bool {
    x >= subject.x && x < subject.x + subject.width && y >= subject.y && y < subject.y + subject.height
  }

  func color(_ x: Int, _ y: Int) -> RGB { isSubject(x, y) ? foreground : background(x, y) }

  /// Points well inside the subject and well inside the background (away from resize blur).
  var subjectPoints: [(Int, Int)] { [(subject.x + subject.width / 2, subject.y + subject.height / 2), (subject.x + 4, subject.y + 4)] }
  var backgroundPoints: [(Int, Int)] { [(2, 2), (width - 3, height - 3), (2, height - 3)] }

  func rgba() -> [UInt8] {
    var bytes = [UInt8](repeating: 255, count: width * height * 4)
    for y in 0..<height {
      for x in 0..<width {
        let c = color(x, y)
        let i = (y * width + x) * 4
        bytes[i] = UInt8(c.r); bytes[i + 1] = UInt8(c.g); bytes[i + 2] = UInt8(c.b)
      }
    }
    return bytes
  }

  func buffer(pts: UInt, duration: UInt = 40_000_000) -> UnsafeMutablePointer<GstBuffer> {
    let bytes = rgba()
    let buffer = gst_buffer_new_allocate(nil, UInt(bytes.count), nil)!
    _ = bytes.withUnsafeBytes { gst_buffer_fill(buffer, 0, $0.baseAddress, UInt(bytes.count)) }
    buffer.pointee.pts = pts
    buffer.pointee.dts = pts
    buffer.pointee.duration = duration
    return buffer
  }

  var capsString: String { "video/x-raw,format=RGBA,width=\(width),height=\(height),framerate=25/1" }
}

/// Pixel reader for a buffer in any of the element's output formats.
struct DecodedFrame {
  let info: GstVideoInfo
  let bytes: [[UInt8]]
  let strides: [Int]
  let format: String

  init(buffer: UnsafeMutablePointer<GstBuffer>, caps: UnsafeMutablePointer<GstCaps>) {
    var info = GstVideoInfo()
    precondition(gst_video_info_from_caps(&info, caps) != 0)
    var frame = GstVideoFrame()
    precondition(gst_video_frame_map(&frame, &info, buffer, GST_MAP_READ) != 0)
    defer { gst_video_frame_unmap(&frame) }
    let planes = Int(info.finfo.pointee.n_planes)
    let data = [frame.data.0, frame.data.1, frame.data.2, frame.data.3]
    let strides = [frame.info.stride.0, frame.info.stride.1, frame.info.stride.2, frame.info.stride.3].map(Int.init)
    var bytes: [[UInt8]] = []
    for p in 0..<planes {
      let rows = p == 0 || p == 3 ? Int(info.height) : (Int(info.height) + 1) / 2
      bytes.append(Array(UnsafeRawBufferPointer(start: data[p], count: strides[p] * rows)))
    }
    self.info = info
    self.bytes = bytes
    self.strides = strides
    self.format = String(cString: gst_video_format_to_string(info.finfo.pointee.format))
  }

  /// Raw component values at (x, y): RGB(A) for packed formats, Y U V (A) for YUV, the matte for GRAY8.
  func components(_ x: Int, _ y: Int) -> [Int] {
    func at(_ plane: Int, _ offset: Int) -> Int { Int(bytes[plane][offset]) }
    switch format {
    case "RGBA", "RGBx": return (0..<4).map { at(0, y * strides[0] + x * 4 + $0) }
    case "BGRA", "BGRx": return [2, 1, 0, 3].map { at(0, y * strides[0] + x * 4 + $0) }
    case "RGB": return (0..<3).map { at(0, y * strides[0] + x * 3 + $0) }
    case "BGR": return [2, 1, 0].map { at(0, y * strides[0] + x * 3 + $0) }
    case "GRAY8": return [at(0, y * strides[0] + x)]
    case "I420", "A420":
      var values = [at(0, y * strides[0] + x), at(1, (y / 2) * strides[1] + x / 2), at(2, (y / 2) * strides[2] + x / 2)]
      if format == "A420" { values.append(at(3, y * strides[3] + x)) }
      return values
    case "NV12":
      return [at(0, y * strides[0] + x), at(1, (y / 2) * strides[1] + (x / 2) * 2), at(1, (y / 2) * strides[1] + (x / 2) * 2 + 1)]
    default: fatalError("unexpected format \(format)")
    }
  }

  var isYUV: Bool { ["I420", "A420", "NV12"].contains(format) }
  var hasAlpha: Bool { ["RGBA", "BGRA", "A420"].contains(format) }

  /// The colour at (x, y) as RGB, converting YUV with BT.601 limited range (the default
  /// colorimetry GStreamer gives small frames) — an independent reference for the engine's maths.
  func rgb(_ x: Int, _ y: Int) -> RGB {
    let c = components(x, y)
    guard isYUV else { return RGB(r: c[0], g: c[1], b: c[2]) }
    let yy = (Double(c[0]) - 16) / 219, u = (Double(c[1]) - 128) / 224, v = (Double(c[2]) - 128) / 224
    let r = yy + 1.402 * v, b = yy + 1.772 * u
    let g = (yy - 0.299 * r - 0.114 * b) / 0.587
    func q(_ value: Double) -> Int { Int((min(max(value, 0), 1) * 255).rounded()) }
    return RGB(r: q(r), g: q(g), b: q(b))
  }

  /// Alpha at (x, y) for formats that carry one.
  func alpha(_ x: Int, _ y: Int) -> Int? {
    switch format {
    case "RGBA", "BGRA", "A420": return components(x, y).last
    case "GRAY8": return components(x, y)[0]
    default: return nil
    }
  }
}

func assertClose(_ actual: RGB, _ expected: RGB, tolerance: Int, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
  let ok = abs(actual.r - expected.r) <= tolerance && abs(actual.g - expected.g) <= tolerance && abs(actual.b - expected.b) <= tolerance
  XCTAssertTrue(ok, "\(message): got \(actual), expected \(expected) ± \(tolerance)", file: file, line: line)
}

/// Collects bus messages of an element that runs outside a pipeline (in a harness).
final class MessageCollector {
  let bus: UnsafeMutablePointer<GstBus>
  init(element: UnsafeMutablePointer<GstElement>) {
    bus = gst_bus_new()
    gst_element_set_bus(element, bus)
  }
  deinit { gst_object_unref(bus) }

  /// Texts of the queued messages of a type (ERROR or WARNING).
  func texts(_ type: GstMessageType) -> [String] {
    var result: [String] = []
    while let message = gst_bus_pop_filtered(bus, type) {
      result.append(messageText(message))
      gst_message_unref(message)
    }
    return result
  }
}

func messageText(_ message: UnsafeMutablePointer<GstMessage>) -> String {
  var error: UnsafeMutablePointer<GError>?
  var debug: UnsafeMutablePointer<gchar>?
  switch message.pointee.type {
  case GST_MESSAGE_ERROR: gst_message_parse_error(message, &error, &debug)
  case GST_MESSAGE_WARNING: gst_message_parse_warning(message, &error, &debug)
  case GST_MESSAGE_INFO: gst_message_parse_info(message, &error, &debug)
  default: return ""
  }
  defer { g_clear_error(&error); g_free(debug) }
  return error.map { String(cString: $0.pointee.message) } ?? ""
}

/// Result of running a gst_parse_launch pipeline to EOS or ERROR.
struct PipelineRun {
  var errors: [String] = []
  var warnings: [String] = []
  var infos: [String] = []
  var reachedEOS = false
}

func runPipeline(_ description: String, timeout: TimeInterval = 120) -> PipelineRun {
  _ = TestEnvironment.initialised
  var parseError: UnsafeMutablePointer<GError>?
  let parsed = gst_parse_launch(description, &parseError)
  if let parseError {
    // Also a linking failure (e.g. caps no element can meet), which gst-launch-1.0 reports too.
    let text = String(cString: parseError.pointee.message)
    g_error_free(parseError)
    if let parsed { gst_object_unref(parsed) }
    return PipelineRun(errors: ["parse: \(text)"])
  }
  guard let pipeline = parsed else { return PipelineRun(errors: ["parse: no pipeline"]) }
  defer {
    gst_element_set_state(pipeline, GST_STATE_NULL)
    gst_object_unref(pipeline)
  }
  var run = PipelineRun()
  let bus = gst_element_get_bus(pipeline)!
  defer { gst_object_unref(bus) }
  gst_element_set_state(pipeline, GST_STATE_PLAYING)
  let deadline = Date().addingTimeInterval(timeout)
  while Date() < deadline {
    guard let message = gst_bus_timed_pop_filtered(
      bus, 100_000_000,
      GstMessageType(rawValue: GST_MESSAGE_ERROR.rawValue | GST_MESSAGE_WARNING.rawValue | GST_MESSAGE_INFO.rawValue
        | GST_MESSAGE_EOS.rawValue))
    else { continue }
    defer { gst_message_unref(message) }
    switch message.pointee.type {
    case GST_MESSAGE_ERROR:
      run.errors.append(messageText(message))
      return run
    case GST_MESSAGE_WARNING: run.warnings.append(messageText(message))
    case GST_MESSAGE_INFO: run.infos.append(messageText(message))
    default:
      run.reachedEOS = true
      return run
    }
  }
  run.errors.append("timed out after \(timeout) s")
  return run
}

struct ToolResult { var status: Int32; var stdout: String; var stderr: String }

/// A folder with a link to the built libgstbackdrop.so only (so the scanner never loads libtorch).
let pluginOnlyDirectory: URL = {
  let directory = FileManager.default.temporaryDirectory.appendingPathComponent("backdrop-plugin-\(getpid())")
  try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  let link = directory.appendingPathComponent("libgstbackdrop.so")
  try? FileManager.default.removeItem(at: link)
  try? FileManager.default.createSymbolicLink(at: link, withDestinationURL: TestEnvironment.buildDirectory.appendingPathComponent("libgstbackdrop.so"))
  return directory
}()

/// Runs a program as a user would, with GStreamer finding the built plugin in its own folder and
/// the plugin finding the engine beside itself.
func runTool(_ executable: String, _ arguments: [String], extraEnvironment: [String: String] = [:]) throws -> ToolResult {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: executable)
  process.arguments = arguments
  var environment = ProcessInfo.processInfo.environment
  environment["GST_PLUGIN_PATH"] = pluginOnlyDirectory.path
  environment["GST_REGISTRY"] = pluginOnlyDirectory.appendingPathComponent("registry.bin").path
  environment.removeValue(forKey: "BACKDROP_ENGINE")
  environment.merge(extraEnvironment) { $1 }
  process.environment = environment
  let out = Pipe(), err = Pipe()
  process.standardOutput = out
  process.standardError = err
  try process.run()
  // Read stderr on another thread so neither pipe fills up and blocks the child.
  nonisolated(unsafe) var stderrData = Data()
  let reader = Thread { stderrData = err.fileHandleForReading.readDataToEndOfFile() }
  reader.start()
  let stdout = out.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  while !reader.isFinished { usleep(1000) }
  return ToolResult(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                    stderr: String(decoding: stderrData, as: UTF8.self))
}
