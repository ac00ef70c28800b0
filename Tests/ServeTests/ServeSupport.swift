// Starting `backdrop serve` as a user would (a child process on a free loopback port), talking to
// it over HTTP, and making and inspecting media with GStreamer's and FFmpeg's command-line tools.
import Foundation
@_exported import ProgramSupport  // RunResult, runProgram, which
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

enum Build {
  static let packageRoot = BuiltProducts.packageRoot
  /// The folder with the built `backdrop` (and the plugin and engine beside it).
  static let directory = BuiltProducts.directory

  static var backdrop: String { directory.appendingPathComponent("backdrop").path }
  static var lumakey: String { packageRoot.appendingPathComponent("models/designed/lumakey.pt").path }

  static func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("backdrop-serve-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }
}

/// A running `backdrop serve`, ended by its process id.
final class ServerProcess: @unchecked Sendable {
  let process = Process()
  let url: URL
  let data: URL
  private let stderrFile: URL

  /// Starts the server on a free port with `arguments` (besides --port and --data) and waits for
  /// the URL it prints.
  init(data: URL, arguments: [String], scratch: URL) throws {
    self.data = data
    stderrFile = scratch.appendingPathComponent("serve-\(UUID().uuidString).log")
    _ = FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
    process.executableURL = URL(fileURLWithPath: Build.backdrop)
    process.arguments = ["serve", "--port", "0", "--data", data.path] + arguments
    process.environment = serverEnvironment(scratch)
    let out = Pipe()
    process.standardOutput = out
    process.standardError = try FileHandle(forWritingTo: stderrFile)
    try process.run()
    var line = Data()
    let deadline = Date().addingTimeInterval(120)
    while !line.contains(UInt8(ascii: "\n")) {
      let chunk = out.fileHandleForReading.availableData
      if chunk.isEmpty || Date() > deadline {
        throw NSError(domain: "serve", code: 1, userInfo: [NSLocalizedDescriptionKey: "the server printed no URL: \((try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "")"])
      }
      line.append(chunk)
    }
    let text = String(decoding: line, as: UTF8.self).split(separator: "\n")[0]
    url = URL(string: String(text))!
  }

  var log: String { (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "" }
  var pid: Int32 { process.processIdentifier }

  /// The server's base URL without a token query.
  var base: String {
    var text = url.absoluteString
    if let mark = text.firstIndex(of: "?") { text = String(text[..<mark]) }
    return text.hasSuffix("/") ? String(text.dropLast()) : text
  }

  func stop(signal: Int32 = SIGTERM) {
    guard process.isRunning else { return }
    kill(process.processIdentifier, signal)
    let deadline = Date().addingTimeInterval(20)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
  }

  /// Open file descriptors and peak resident memory (kB) of the server.
  var openFiles: Int { ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count }
  var peakRSSkB: Int { statusField("VmHWM") }
  var rssKB: Int { statusField("VmRSS") }

  private func statusField(_ name: String) -> Int {
    let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    for row in text.split(separator: "\n") where row.hasPrefix(name + ":") {
      return Int(row.split(separator: " ").dropFirst().first { Int($0) != nil } ?? "") ?? -1
    }
    return -1
  }
}

/// The environment of a user's shell with a private cache and GStreamer registry.
func serverEnvironment(_ scratch: URL) -> [String: String] {
  var environment = ProcessInfo.processInfo.environment
  for key in ["GST_PLUGIN_PATH", "BACKDROP_ENGINE", "BACKDROP_PLUGIN"] { environment.removeValue(forKey: key) }
  environment["XDG_CACHE_HOME"] = scratch.appendingPathComponent("cache").path
  environment["GST_REGISTRY"] = scratch.appendingPathComponent("gst-registry.bin").path
  return environment
}

struct HTTPResult {
  var status: Int
  var headers: [String: String]
  var body: Data
  var text: String { String(decoding: body, as: UTF8.self) }
  var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
  func header(_ name: String) -> String? { headers.first { $0.key.lowercased() == name.lowercased() }?.value }
}

/// One HTTP request, waited for (URLSession; a body from a file is streamed).
func http(_ method: String, _ url: String, body: Data? = nil, file: URL? = nil, headers: [String: String] = [:],
          timeout: TimeInterval = 120) -> HTTPResult {
  var request = URLRequest(url: URL(string: url)!)
  request.httpMethod = method
  request.timeoutInterval = timeout
  for (key, value) in headers { request.setValue(value, forHTTPHeaderField: key) }
  let configuration = URLSessionConfiguration.ephemeral
  configuration.httpCookieStorage = nil
  configuration.httpShouldSetCookies = false
  let session = URLSession(configuration: configuration)
  defer { session.finishTasksAndInvalidate() }
  nonisolated(unsafe) var result = HTTPResult(status: -1, headers: [:], body: Data())
  let done = DispatchSemaphore(value: 0)
  let completion: @Sendable (Data?, URLResponse?, Error?) -> Void = { data, response, error in
    if let response = response as? HTTPURLResponse {
      var headers: [String: String] = [:]
      for (key, value) in response.allHeaderFields { headers["\(key)"] = "\(value)" }
      result = HTTPResult(status: response.statusCode, headers: headers, body: data ?? Data())
    } else {
      result = HTTPResult(status: -1, headers: [:], body: Data("\(error.map { "\($0)" } ?? "no response")".utf8))
    }
    done.signal()
  }
  let task: URLSessionTask
  if let file {
    task = session.uploadTask(with: request, fromFile: file, completionHandler: completion)
  } else if let body {
    task = session.uploadTask(with: request, from: body, completionHandler: completion)
  } else {
    task = session.dataTask(with: request, completionHandler: completion)
  }
  task.resume()
  done.wait()
  return result
}

// MARK: - Programs and media

@discardableResult
func gstLaunch(_ description: [String]) throws -> RunResult {
  let result = try runProgram(which("gst-launch-1.0") ?? "/usr/bin/gst-launch-1.0", ["-q", "-e"] + description)
  XCTAssertEqual(result.status, 0, "gst-launch-1.0 \(description.joined(separator: " ")): \(result.stderr)")
  return result
}

/// SMPTE colour bars (VP8) and a sine tone (Vorbis) in WebM. With the luma-key model the white
/// bar (left) is the subject and the blue bar (right) the background.
func makeClip(_ path: String, frames: Int, width: Int = 160, height: Int = 96, fps: Int = 10) throws {
  try gstLaunch([
    "videotestsrc", "num-buffers=\(frames)", "pattern=smpte", "!",
    "video/x-raw,width=\(width),height=\(height),framerate=\(fps)/1", "!", "videoconvert", "!",
    "vp8enc", "deadline=1", "!", "webmmux", "name=m", "!", "filesink", "location=\(path)",
    "audiotestsrc", "num-buffers=\(frames)", "samplesperbuffer=\(48000 / fps)", "!",
    "audio/x-raw,rate=48000,channels=1", "!", "audioconvert", "!", "vorbisenc", "!", "m.",
  ])
}

struct ProbedStream {
  var kind: String
  var codec: String
  var frames: Int
  var width: Int
  var height: Int
  var alphaMode: String?
}

/// Streams of a file as ffprobe sees them (frames counted by decoding).
func ffprobe(_ path: String) throws -> [ProbedStream] {
  let result = try runProgram(which("ffprobe") ?? "/usr/bin/ffprobe", [
    "-v", "error", "-count_frames", "-show_entries",
    "stream=codec_type,codec_name,nb_read_frames,width,height:stream_tags=alpha_mode,ALPHA_MODE", "-of", "json", path,
  ])
  guard result.status == 0, let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
    throw NSError(domain: "ffprobe", code: 1, userInfo: [NSLocalizedDescriptionKey: "ffprobe \(path): \(result.stderr)"])
  }
  return (json["streams"] as? [[String: Any]] ?? []).map { stream in
    let tags = stream["tags"] as? [String: Any] ?? [:]
    return ProbedStream(
      kind: stream["codec_type"] as? String ?? "?", codec: stream["codec_name"] as? String ?? "?",
      frames: Int(stream["nb_read_frames"] as? String ?? "") ?? -1,
      width: stream["width"] as? Int ?? 0, height: stream["height"] as? Int ?? 0,
      alphaMode: (tags["alpha_mode"] ?? tags["ALPHA_MODE"]) as? String)
  }
}

/// Every video frame of a file decoded by GStreamer to raw `format` bytes (RGBA keeps VP9 alpha
/// through the codecalpha decoders that decodebin picks for a WebM with alpha).
func decodeFrames(_ path: String, format: String, width: Int, height: Int) throws -> [[UInt8]] {
  let raw = FileManager.default.temporaryDirectory.appendingPathComponent("decoded-\(UUID().uuidString).raw")
  defer { try? FileManager.default.removeItem(at: raw) }
  try gstLaunch(["filesrc", "location=\(path)", "!", "decodebin", "!", "videoconvert", "!",
                 "video/x-raw,format=\(format)", "!", "filesink", "location=\(raw.path)"])
  let bytes = [UInt8]((try? Data(contentsOf: raw)) ?? Data())
  let size = width * height * (format == "RGB" ? 3 : 4)
  return stride(from: 0, to: bytes.count - size + 1, by: size).map { Array(bytes[$0..<$0 + size]) }
}

/// Files under a folder, relative paths, sorted.
func filesUnder(_ folder: URL) -> [String] {
  let enumerator = FileManager.default.enumerator(atPath: folder.path)
  var list: [String] = []
  while let item = enumerator?.nextObject() as? String {
    var isDirectory: ObjCBool = false
    _ = FileManager.default.fileExists(atPath: folder.appendingPathComponent(item).path, isDirectory: &isDirectory)
    if !isDirectory.boolValue { list.append(item) }
  }
  return list.sorted()
}

/// Polls a job until it has finished; returns its last view.
func waitForJob(_ server: ServerProcess, _ id: String, timeout: TimeInterval = 300,
                until states: Set<String> = ["done", "failed", "cancelled", "interrupted"]) -> [String: Any] {
  let deadline = Date().addingTimeInterval(timeout)
  var last: [String: Any] = [:]
  while Date() < deadline {
    last = http("GET", "\(server.base)/api/jobs/\(id)").json
    if let state = last["state"] as? String, states.contains(state) { return last }
    usleep(100_000)
  }
  return last
}
