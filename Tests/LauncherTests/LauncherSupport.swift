// Running the built `backdrop` as a user would (a child process, no GStreamer plugin path: it
// finds the plugin beside itself), and looking at what it wrote with gst-launch-1.0 and ffprobe.
import Foundation
@_exported import ProgramSupport  // RunResult, runProgram, which
import XCTest

enum Launcher {
  static let packageRoot = BuiltProducts.packageRoot
  /// The folder with the built `backdrop` (and libgstbackdrop.so, libbackdrop-torch.so).
  static let buildDirectory = BuiltProducts.directory

  static var executable: String { buildDirectory.appendingPathComponent("backdrop").path }

  static func designedModel(_ name: String) -> String {
    packageRoot.appendingPathComponent("models/designed/\(name).pt").path
  }

  static func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("backdrop-launcher-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  /// The environment of a user's shell, with a private cache and GStreamer registry.
  static func environment(cache: URL, extra: [String: String] = [:]) -> [String: String] {
    var environment = ProcessInfo.processInfo.environment
    for key in ["GST_PLUGIN_PATH", "BACKDROP_ENGINE", "BACKDROP_PLUGIN", "BACKDROP_MODEL_BASE_URL"] {
      environment.removeValue(forKey: key)
    }
    environment["XDG_CACHE_HOME"] = cache.path
    environment["GST_REGISTRY"] = cache.appendingPathComponent("gst-registry.bin").path
    environment.merge(extra) { $1 }
    return environment
  }
}

/// gst-launch-1.0 with the given description split as a shell would (no quoting needed here).
@discardableResult
func gstLaunch(_ description: [String]) throws -> RunResult {
  let result = try runProgram(which("gst-launch-1.0") ?? "/usr/bin/gst-launch-1.0", ["-q", "-e"] + description)
  XCTAssertEqual(result.status, 0, "gst-launch-1.0 \(description.joined(separator: " ")): \(result.stderr)")
  return result
}

/// A stream as ffprobe sees it (frames counted by decoding).
struct ProbedStream {
  var kind: String
  var codec: String
  var frames: Int
  var width: Int
  var height: Int
  var alphaMode: String?
}

struct ProbedFile {
  var streams: [ProbedStream]
  var duration: Double
  var video: ProbedStream? { streams.first { $0.kind == "video" } }
  var audio: ProbedStream? { streams.first { $0.kind == "audio" } }
}

func ffprobe(_ path: String) throws -> ProbedFile {
  let result = try runProgram(which("ffprobe") ?? "/usr/bin/ffprobe", [
    "-v", "error", "-count_frames", "-show_entries",
    "stream=codec_type,codec_name,nb_read_frames,width,height:stream_tags=alpha_mode,ALPHA_MODE:format=duration",
    "-of", "json", path,
  ])
  guard result.status == 0, let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
    throw NSError(domain: "ffprobe", code: 1, userInfo: [NSLocalizedDescriptionKey: "ffprobe \(path): \(result.stderr)"])
  }
  let streams = (json["streams"] as? [[String: Any]] ?? []).map { stream -> ProbedStream in
    let tags = stream["tags"] as? [String: Any] ?? [:]
    return ProbedStream(
      kind: stream["codec_type"] as? String ?? "?", codec: stream["codec_name"] as? String ?? "?",
      frames: Int(stream["nb_read_frames"] as? String ?? "") ?? -1,
      width: stream["width"] as? Int ?? 0, height: stream["height"] as? Int ?? 0,
      alphaMode: (tags["alpha_mode"] ?? tags["ALPHA_MODE"]) as? String)
  }
  let duration = Double((json["format"] as? [String: Any])?["duration"] as? String ?? "") ?? -1
  return ProbedFile(streams: streams, duration: duration)
}

/// Decodes every video frame of a file with GStreamer into raw `format` bytes.
func decodeFrames(_ path: String, format: String, width: Int, height: Int) throws -> [[UInt8]] {
  let raw = FileManager.default.temporaryDirectory.appendingPathComponent("decoded-\(UUID().uuidString).raw")
  defer { try? FileManager.default.removeItem(at: raw) }
  try gstLaunch(["filesrc", "location=\(path)", "!", "decodebin", "!", "videoconvert", "!",
                 "video/x-raw,format=\(format)", "!", "filesink", "location=\(raw.path)"])
  let bytes = [UInt8]((try? Data(contentsOf: raw)) ?? Data())
  let size = width * height * (format == "GRAY8" ? 1 : format == "RGB" ? 3 : 4)
  return stride(from: 0, to: bytes.count - size + 1, by: size).map { Array(bytes[$0..<$0 + size]) }
}

/// The JSON objects a `--json` run printed, one per line; fails the test on a line that is not one.
func jsonEvents(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
  text.split(separator: "\n").compactMap { row in
    guard let object = try? JSONSerialization.jsonObject(with: Data(row.utf8)) as? [String: Any] else {
      XCTFail("not a JSON object: \(row)", file: file, line: line)
      return nil
    }
    return object
  }
}
