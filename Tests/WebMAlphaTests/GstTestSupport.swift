// Shared setup for the vp9alphaenc/webmalphamux tests: static plugin registration, in-process
// pipelines with bus handling, external tools, and the synthetic alpha pattern.
import CBackdropShim
import CGStreamer
import Foundation
import XCTest

enum WebMTestEnvironment {
  /// The directory of the test bundle (the SwiftPM build directory, e.g. .build-webm/debug).
  static let buildDirectory: URL = URL(fileURLWithPath: CommandLine.arguments.first { $0.hasSuffix(".xctest") } ?? Bundle.main.bundlePath)
    .deletingLastPathComponent()

  /// GStreamer initialised with the backdrop plugin registered statically.
  static let ready: Bool = {
    setenv("GST_REGISTRY", buildDirectory.appendingPathComponent("webmalpha-test-registry.bin").path, 0)
    gst_init(nil, nil)
    if let plugin = gst_registry_find_plugin(gst_registry_get(), "backdrop") {
      gst_object_unref(UnsafeMutableRawPointer(plugin))
    } else {
      gst_plugin_backdrop_register()
    }
    return gst_element_factory_find("vp9alphaenc") != nil
  }()

  /// A fresh temporary directory for one test.
  static func temporaryDirectory(_ name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("webmalpha-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  /// Where an executable is on PATH, or nil.
  static func which(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
      let path = "\(dir)/\(name)"
      if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
  }

  /// A directory holding only the plugin (as users point GST_PLUGIN_PATH at), or nil when the
  /// shared library has not been built (swift build --product gstbackdrop).
  static func pluginDirectory() -> URL? {
    let library = buildDirectory.appendingPathComponent("libgstbackdrop.so")
    guard FileManager.default.fileExists(atPath: library.path) else { return nil }
    let dir = buildDirectory.appendingPathComponent("webmalpha-plugin-dir")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let link = dir.appendingPathComponent("libgstbackdrop.so")
    if (try? FileManager.default.destinationOfSymbolicLink(atPath: link.path)) == nil {
      try? FileManager.default.createSymbolicLink(at: link, withDestinationURL: library)
    }
    return dir
  }
}

struct ProcessResult {
  let status: Int32
  let stdoutData: Data
  var stdout: String { String(decoding: stdoutData, as: UTF8.self) }
  let stderr: String
}

/// Runs a program to completion and captures its output.
@discardableResult
func runProcess(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                stdinFile: String? = nil) throws -> ProcessResult {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : (WebMTestEnvironment.which(executable) ?? executable))
  process.arguments = arguments
  if let environment {
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
  }
  let out = Pipe()
  let err = Pipe()
  process.standardOutput = out
  process.standardError = err
  if let stdinFile { process.standardInput = FileHandle(forReadingAtPath: stdinFile) }
  try process.run()
  // Read both pipes while the process runs so that neither fills up.
  nonisolated(unsafe) var errData = Data()
  let errThread = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
  errThread.start()
  let outData = out.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  while errThread.isExecuting || !errThread.isFinished { usleep(1000) }
  return ProcessResult(status: process.terminationStatus, stdoutData: outData,
                       stderr: String(decoding: errData, as: UTF8.self))
}

/// The outcome of an in-process pipeline run to EOS.
struct PipelineOutcome {
  var error: String? = nil
  var errorDebug: String? = nil
  var warnings: [String] = []
}

/// Runs a gst-launch style description in this process until EOS or ERROR.
func runPipeline(_ description: String, timeoutSeconds: Double = 60) -> PipelineOutcome {
  var parseError: UnsafeMutablePointer<GError>? = nil
  guard let pipeline = gst_parse_launch(description, &parseError) else {
    let message = parseError.map { String(cString: $0.pointee.message) } ?? "unknown"
    return PipelineOutcome(error: "parse error: \(message)")
  }
  if let parseError {
    let message = String(cString: parseError.pointee.message)
    g_error_free(parseError)
    gst_object_unref(pipeline)
    return PipelineOutcome(error: "parse error: \(message)")
  }
  defer {
    gst_element_set_state(pipeline, GST_STATE_NULL)
    gst_object_unref(pipeline)
  }
  gst_element_set_state(pipeline, GST_STATE_PLAYING)
  return waitForEnd(pipeline, timeoutSeconds: timeoutSeconds)
}

/// Waits on the bus of `pipeline` for EOS or ERROR (collecting warnings).
func waitForEnd(_ pipeline: UnsafeMutablePointer<GstElement>, timeoutSeconds: Double) -> PipelineOutcome {
  var outcome = PipelineOutcome()
  let bus = gst_element_get_bus(pipeline)!
  defer { gst_object_unref(bus) }
  let deadline = Date().addingTimeInterval(timeoutSeconds)
  while Date() < deadline {
    let types = GstMessageType(rawValue: GST_MESSAGE_EOS.rawValue | GST_MESSAGE_ERROR.rawValue | GST_MESSAGE_WARNING.rawValue)
    guard let message = gst_bus_timed_pop_filtered(bus, 100_000_000, types) else { continue }
    defer { gst_message_unref(message) }
    switch message.pointee.type {
    case GST_MESSAGE_EOS:
      return outcome
    case GST_MESSAGE_ERROR, GST_MESSAGE_WARNING:
      var error: UnsafeMutablePointer<GError>? = nil
      var debug: UnsafeMutablePointer<gchar>? = nil
      if message.pointee.type == GST_MESSAGE_ERROR {
        gst_message_parse_error(message, &error, &debug)
      } else {
        gst_message_parse_warning(message, &error, &debug)
      }
      let text = error.map { String(cString: $0.pointee.message) } ?? "?"
      let debugText = debug.map { String(cString: $0) }
      if let error { g_error_free(error) }
      if let debug { g_free(debug) }
      if message.pointee.type == GST_MESSAGE_ERROR {
        outcome.error = text
        outcome.errorDebug = debugText
        return outcome
      }
      outcome.warnings.append(text)
    default: break
    }
  }
  outcome.error = "timed out after \(timeoutSeconds) s"
  return outcome
}

/// The synthetic test clip: a known alpha pattern with a moving hard-edged opaque square, a
/// static half-transparent rectangle, a horizontal gradient band that scrolls, and a transparent
/// background. Colour: a luma ramp with coloured chroma (irrelevant to the alpha checks).
struct AlphaPattern {
  let width: Int
  let height: Int
  let frames: Int
  let fps = 30

  var frameSize: Int { width * height * 2 + 2 * ((width + 1) / 2) * ((height + 1) / 2) }

  /// Top-left corner of the opaque square in frame t.
  func squareOrigin(_ t: Int) -> (x: Int, y: Int) { (16 + (t * 3) % (width - 112 - 64 - 24), 24) }
  var squareSize: Int { 64 }
  /// The half-transparent rectangle (alpha 128).
  var halfRect: (x: Int, y: Int, w: Int, h: Int) { (width - 112, 24, 96, 64) }
  /// The gradient band: rows [bandTop, height - 8), alpha ramps 0→255 over the width, shifting by 2 px per frame.
  var bandTop: Int { height - 72 }

  func alpha(x: Int, y: Int, t: Int) -> UInt8 {
    let (sx, sy) = squareOrigin(t)
    if x >= sx && x < sx + squareSize && y >= sy && y < sy + squareSize { return 255 }
    let r = halfRect
    if x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h { return 128 }
    if y >= bandTop && y < height - 8 {
      let shifted = (x + 2 * t) % width
      return UInt8(shifted * 255 / (width - 1))
    }
    return 0
  }

  /// One A420 frame, planes Y, U, V, A tightly packed.
  func frame(_ t: Int) -> [UInt8] {
    var data = [UInt8](repeating: 0, count: frameSize)
    let cw = (width + 1) / 2
    let ch = (height + 1) / 2
    for y in 0..<height {
      for x in 0..<width { data[y * width + x] = UInt8(16 + (x + y + t) % 200) }
    }
    let uOffset = width * height
    let vOffset = uOffset + cw * ch
    for i in 0..<(cw * ch) {
      data[uOffset + i] = 90
      data[vOffset + i] = 170
    }
    let aOffset = vOffset + cw * ch
    for y in 0..<height {
      for x in 0..<width { data[aOffset + y * width + x] = alpha(x: x, y: y, t: t) }
    }
    return data
  }

  /// Writes the clip as raw A420 frames; feed with `rawVideoSource(path)`.
  func write(to url: URL) throws {
    var all = [UInt8]()
    all.reserveCapacity(frameSize * frames)
    for t in 0..<frames { all += frame(t) }
    try Data(all).write(to: url)
  }

  /// A gst-launch fragment producing this clip from the raw file, timestamped from 0.
  func rawVideoSource(_ path: String) -> String {
    "filesrc location=\(path) blocksize=\(frameSize) ! rawvideoparse format=a420 width=\(width) height=\(height) framerate=\(fps)/1"
  }

  /// Points to check: (x, y, expected alpha, allowed error), kept ≥ 6 px away from any edge.
  func checkPoints(_ t: Int) -> [(x: Int, y: Int, alpha: UInt8, tolerance: Int)] {
    let (sx, sy) = squareOrigin(t)
    let r = halfRect
    var points: [(Int, Int, UInt8, Int)] = [
      (sx + squareSize / 2, sy + squareSize / 2, 255, 6),
      (sx + 8, sy + 8, 255, 6),
      (r.x + r.w / 2, r.y + r.h / 2, 128, 6),
      (r.x + 10, r.y + r.h - 10, 128, 6),
      (8, height / 2, 0, 6),
      (width / 2, bandTop - 20, 0, 6),
    ]
    for x in stride(from: 24, to: width - 24, by: 40) {
      let shifted = (x + 2 * t) % width
      if shifted < 8 || shifted > width - 8 { continue }  // the wrap-around edge is hard
      points.append((x, (bandTop + height - 8) / 2, alpha(x: x, y: bandTop + 10, t: t), 10))
    }
    return points
  }
}
