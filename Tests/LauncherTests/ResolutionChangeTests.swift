// Recordings from browsers and calls (MediaRecorder, WebRTC) change resolution mid-stream. Every
// output has one size, the first frame's: later frames are scaled to fit with their shape kept.
// Before, H.264 in MP4 kept only the first size's parameter sets (ffmpeg could not decode the
// rest) and ProRes stopped with "Internal data stream error".
//
// The clip: a white ball on black (the luma key's subject), 20 frames at 160×96 (5:3), then 20 at
// 192×128 (3:2), VP8 in WebM, joined by GStreamer's concat.
import Foundation
import XCTest

final class ResolutionChangeTests: XCTestCase {
  var directory: URL!
  var model: String { Launcher.designedModel("lumakey") }
  func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

  override func setUpWithError() throws {
    directory = try Launcher.temporaryDirectory()
    try gstLaunch([
      "concat", "name=c", "!", "videoconvert", "!", "vp8enc", "deadline=1", "keyframe-max-dist=10", "!", "webmmux", "!",
      "filesink", "location=\(path("resized.webm"))",
      "videotestsrc", "num-buffers=20", "pattern=ball", "!", "video/x-raw,width=160,height=96,framerate=10/1", "!", "c.",
      "videotestsrc", "num-buffers=20", "pattern=ball", "!", "video/x-raw,width=192,height=128,framerate=10/1", "!", "c.",
    ])
    XCTAssertEqual(try frameSizes(path("resized.webm")), ["160x96": 20, "192x128": 20])
  }

  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  /// How many decoded frames have each size; fails on any decoding error.
  func frameSizes(_ file: String) throws -> [String: Int] {
    let result = try runProgram(which("ffprobe") ?? "/usr/bin/ffprobe",
                                ["-v", "error", "-select_streams", "v:0", "-show_entries", "frame=width,height", "-of", "csv=p=0", file])
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertEqual(result.stderr, "", "\(file) decodes without errors")
    return result.stdoutLines.reduce(into: [:]) { counts, line in
      let fields = line.split(separator: ",")
      if fields.count >= 2 { counts["\(fields[0])x\(fields[1])", default: 0] += 1 }
    }
  }

  func testEveryOutputKeepsTheFirstSizeAndTheShape() throws {
    let environment = Launcher.environment(cache: directory.appendingPathComponent("cache"))
    let outputs: [(String, [String])] = [
      ("alpha.webm", []), ("green.webm", ["--background", "green"]), ("green.mp4", []), ("alpha.mov", []),
      ("stacked.mp4", ["--stacked-alpha"]),
    ]
    for (name, options) in outputs {
      let result = try runProgram(Launcher.executable, ["compose", path("resized.webm"), "-o", path(name), "--model", model,
                                                        "--temporal-smooth", "0", "-q"] + options, environment: environment)
      XCTAssertEqual(result.status, 0, "\(name): \(result.stderr)")
      XCTAssertEqual(try frameSizes(path(name)), [name == "stacked.mp4" ? "160x192" : "160x96": 40], name)
    }
    // The ball stays round after the change: 192×128 is fitted into 160×96 at 144×96 between
    // black borders (which the luma key leaves transparent), not stretched (that would make it
    // about 11 % wider than tall).
    let alphas = try ScaleFixture.alphaPlanes(path("alpha.webm"), in: directory)
    XCTAssertEqual(alphas.count, 40)
    for k in [5, 30, 35] {
      let covered = alphas[k].indices.filter { alphas[k][$0] > 127 }
      let xs = covered.map { $0 % ScaleFixture.width }, ys = covered.map { $0 / ScaleFixture.width }
      let (width, height) = (xs.max()! - xs.min()! + 1, ys.max()! - ys.min()! + 1)
      XCTAssertLessThanOrEqual(abs(width - height), 1, "frame \(k): the ball is \(width)x\(height)")
      XCTAssertTrue((0..<8).allSatisfy { alphas[k][48 * ScaleFixture.width + $0] == 0 }, "frame \(k): the left edge is transparent")
    }
  }
}
