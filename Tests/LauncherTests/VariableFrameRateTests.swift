// Phone and screen recordings have a variable frame rate: the frames come as the scene allows, and
// the container's frame rate is only their average. Every frame must reach the output at its own
// time, whatever the output (also --stacked-alpha and the --preview MP4, which compositor wrote at
// the average rate, repeating and dropping frames, before alphaview replaced it). libvpx in realtime mode with its default lookahead (vp9enc's
// lag-in-frames 25) gave back 52 to 55 of this clip's 57 frames in a green-screen WebM: the last
// ones were lost at EOS.
//
// The clip: 30 frames/s for 1 s, 12 frames/s for 1 s, 30 frames/s for 0.5 s (57 frames, average
// 23 frames/s), H.264 in MP4 with B-frames, made by ffmpeg's concat filter.
import Foundation
import XCTest

final class VariableFrameRateTests: XCTestCase {
  var directory: URL!
  var model: String { Launcher.designedModel("lumakey") }
  func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

  override func setUpWithError() throws {
    directory = try Launcher.temporaryDirectory()
    let sections = ["testsrc=size=160x96:rate=30:d=1", "testsrc=size=160x96:rate=12:d=1", "testsrc=size=160x96:rate=30:d=0.5"]
    let ffmpeg = try runProgram(which("ffmpeg") ?? "/usr/bin/ffmpeg",
      ["-v", "error", "-y"] + sections.flatMap { ["-f", "lavfi", "-i", $0] } + [
        "-filter_complex", "[0][1][2]concat=n=3:v=1:a=0", "-fps_mode", "passthrough", "-pix_fmt", "yuv420p",
        "-c:v", "libx264", "-bf", "2", "-video_track_timescale", "90000", path("vfr.mp4"),
      ])
    XCTAssertEqual(ffmpeg.status, 0, ffmpeg.stderr)
  }

  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  /// Presentation times in milliseconds, sorted.
  func times(_ file: String) throws -> [Int] {
    try ScaleFixture.videoPackets(file).map { Int(($0.pts * 1000).rounded()) }.sorted()
  }

  func testEveryFrameKeepsItsTimeInEveryOutput() throws {
    let input = try times(path("vfr.mp4"))
    XCTAssertEqual(input.count, 57)
    XCTAssertEqual(Array(input.prefix(3)), [0, 33, 67], "30 frames/s first")
    XCTAssertEqual(Array(input[30...32]), [1000, 1083, 1167], "then 12 frames/s")
    XCTAssertEqual(input.last, 2467)
    let outputs: [(String, [String])] = [
      ("green.webm", ["--background", "green"]),
      ("green-crf.webm", ["--background", "green", "--crf", "30"]),
      ("alpha.webm", []),
      ("green.mp4", []),
      ("alpha.mov", []),
      ("stacked.mp4", ["--stacked-alpha"]),
      ("alpha-with-preview.webm", ["--preview", path("preview.mp4")]),
    ]
    for (name, options) in outputs {
      let result = try runProgram(Launcher.executable, ["compose", path("vfr.mp4"), "-o", path(name), "--model", model, "-q"] + options,
                                  environment: Launcher.environment(cache: directory.appendingPathComponent("cache")))
      XCTAssertEqual(result.status, 0, "\(name): \(result.stderr)")
      let output = try times(path(name))
      XCTAssertEqual(output.count, input.count, "\(name): every frame written")
      // WebM counts milliseconds, MP4 and QuickTime their track's timescale: within 1 ms.
      let drift = zip(input, output).map { abs($0 - $1) }.max() ?? 0
      XCTAssertLessThanOrEqual(drift, 1, "\(name): each frame at its input time (\(output.suffix(4)) against \(input.suffix(4)))")
    }
    let preview = try times(path("preview.mp4"))
    XCTAssertEqual(preview.count, input.count, "the preview: every frame")
    XCTAssertLessThanOrEqual(zip(input, preview).map { abs($0 - $1) }.max() ?? 0, 1, "the preview: each frame at its time")
  }
}
