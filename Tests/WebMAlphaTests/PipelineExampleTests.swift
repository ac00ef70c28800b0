// The runnable examples in pipelines/ for vp9alphaenc and webmalphamux, run with gst-launch-1.0
// against the built plugin through GST_PLUGIN_PATH, as a user would.
import Foundation
import XCTest

final class WebMPipelineExampleTests: XCTestCase {
  static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

  func environment() throws -> [String: String] {
    guard let plugins = WebMTestEnvironment.pluginDirectory() else {
      let reason = "libgstbackdrop.so is not built next to the tests (run swift build first)"
      print("SKIP: \(reason)")
      throw XCTSkip(reason)
    }
    guard WebMTestEnvironment.which("gst-launch-1.0") != nil, WebMTestEnvironment.which("ffmpeg") != nil else {
      print("SKIP: gst-launch-1.0 or ffmpeg missing (gstreamer1.0-tools, ffmpeg)")
      throw XCTSkip("gst-launch-1.0 or ffmpeg missing")
    }
    let registry = WebMTestEnvironment.buildDirectory.appendingPathComponent("webmalpha-examples-registry.bin").path
    return ["GST_PLUGIN_PATH": plugins.path, "GST_REGISTRY": registry]
  }

  func script(_ name: String) -> String { Self.repositoryRoot.appendingPathComponent("pipelines/\(name)").path }

  /// Alpha histogram of the first frame, decoded by ffmpeg with libvpx-vp9.
  func firstFrameAlpha(_ input: [String], stdinFile: String? = nil) throws -> (transparent: Double, opaque: Int) {
    let result = try runProcess("ffmpeg", ["-v", "error", "-c:v", "libvpx-vp9"] + input + ["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgba", "-"], stdinFile: stdinFile)
    XCTAssertEqual(result.status, 0, result.stderr)
    let bytes = [UInt8](result.stdoutData)
    XCTAssertEqual(bytes.count, 640 * 360 * 4)
    var transparent = 0
    var opaque = 0
    for index in stride(from: 3, to: bytes.count, by: 4) {
      if bytes[index] <= 2 { transparent += 1 }
      if bytes[index] >= 250 { opaque += 1 }
    }
    return (Double(transparent) / Double(640 * 360), opaque)
  }

  func testWebMAlphaFromTestsrc() throws {
    let env = try environment()
    let dir = try WebMTestEnvironment.temporaryDirectory("example")
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("testsrc-alpha.webm").path
    let run = try runProcess("/bin/sh", [script("webm-alpha-from-testsrc.sh"), out, "60"], environment: env)
    XCTAssertEqual(run.status, 0, "script failed: \(run.stderr)")
    let probe = try runProcess("ffprobe", ["-v", "error", "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames:format=duration", "-of", "csv=p=0", out])
    let lines = probe.stdout.split(separator: "\n").map(String.init)
    XCTAssertEqual(lines.first, "vp9,60", "60 VP9 frames")
    XCTAssertTrue(lines.contains { $0.hasPrefix("opus,") }, "an Opus track: \(lines)")
    XCTAssertEqual(Double(lines.last ?? "") ?? 0, 2.0, accuracy: 0.03, "file duration")
    let alpha = try firstFrameAlpha(["-i", out])
    XCTAssertGreaterThan(alpha.transparent, 0.9, "the background is transparent")
    XCTAssertGreaterThan(alpha.opaque, 300, "the ball is opaque")
  }

  func testLiveWebMAlphaToStdout() throws {
    let env = try environment()
    let dir = try WebMTestEnvironment.temporaryDirectory("example-live")
    defer { try? FileManager.default.removeItem(at: dir) }
    let run = try runProcess("/bin/sh", [script("webm-alpha-live-to-stdout.sh"), "30"], environment: env)
    XCTAssertEqual(run.status, 0, "script failed: \(run.stderr)")
    let file = dir.appendingPathComponent("live.webm").path
    try run.stdoutData.write(to: URL(fileURLWithPath: file))
    // Decoded from a pipe, as a consumer of stdout would.
    let alpha = try firstFrameAlpha(["-i", "pipe:0"], stdinFile: file)
    XCTAssertGreaterThan(alpha.transparent, 0.9)
    XCTAssertGreaterThan(alpha.opaque, 300)
    let probe = try runProcess("ffprobe", ["-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", file])
    XCTAssertEqual(probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "30")
  }
}
