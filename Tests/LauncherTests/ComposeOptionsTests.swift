// Smaller compose options a new user asked for: output quality (--crf/--bitrate) mapped onto each
// encoder, the warning when the model finds nobody on most frames, --start/--end and
// image-sequence input.
import Foundation
import XCTest

final class ComposeOptionsTests: XCTestCase {
  static let width = 160, height = 96, frames = 6, fps = 10
  var directory: URL!
  var model: String { Launcher.designedModel("lumakey") }

  override func setUpWithError() throws {
    directory = try Launcher.temporaryDirectory()
  }

  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  func clip(_ pattern: String) throws -> String {
    let path = directory.appendingPathComponent("\(pattern).webm").path
    try ComposeTests.makeClip(path, frames: Self.frames, width: Self.width, height: Self.height, fps: Self.fps, pattern: pattern)
    return path
  }

  func backdrop(_ arguments: [String]) throws -> RunResult {
    try runProgram(Launcher.executable, arguments, environment: Launcher.environment(cache: directory.appendingPathComponent("cache")))
  }

  func printed(_ arguments: [String]) throws -> String {
    let result = try backdrop(["compose"] + arguments + ["--model", model, "--print-pipeline"])
    XCTAssertEqual(result.status, 0, result.stderr)
    return result.stdout
  }

  func testQualityOptionsReachTheEncoders() throws {
    let input = try clip("smpte")
    let out = directory.appendingPathComponent("o").path
    XCTAssertTrue(try printed([input, "-o", out + ".webm", "--crf", "30"]).contains("vp9alphaenc end-usage=q cq-level=30 !"))
    XCTAssertTrue(try printed([input, "-o", out + ".webm", "--background", "green", "--bitrate", "2M"])
      .contains("end-usage=vbr target-bitrate=2000000 !"))
    // vp9enc has no end-usage q: constant quality holds its quantizer at the level.
    XCTAssertTrue(try printed([input, "-o", out + ".webm", "--background", "green", "--crf", "30"])
      .contains("vp9enc deadline=1 cpu-used=8 row-mt=true lag-in-frames=0 min-quantizer=30 max-quantizer=30 !"))
    XCTAssertTrue(try printed([input, "-o", out + ".mp4", "--crf", "20"]).contains("pass=qual quantizer=20 !"))
    XCTAssertTrue(try printed([input, "-o", out + ".mp4", "--bitrate", "800k"]).contains("bitrate=800 !"))
    // Without either: about 0.12 bit per pixel, at least 500 kbit/s.
    XCTAssertTrue(try printed([input, "-o", out + ".webm"]).contains("target-bitrate=500000 !"))

    let both = try backdrop(["compose", input, "-o", out + ".mp4", "--model", model, "--crf", "20", "--bitrate", "1M"])
    XCTAssertEqual(both.status, 64)
    XCTAssertTrue(both.stderr.contains("--crf and --bitrate exclude each other"), both.stderr)
    let prores = try backdrop(["compose", input, "-o", out + ".mov", "--model", model, "--crf", "20"])
    XCTAssertEqual(prores.status, 64)
    XCTAssertTrue(prores.stderr.contains("ProRes 4444 (.mov) and PNG have no such setting"), prores.stderr)
    let lossless = try backdrop(["compose", input, "-o", out + ".mp4", "--model", model, "--crf", "0"])
    XCTAssertEqual(lossless.status, 64)
    XCTAssertTrue(lossless.stderr.contains("--crf 0: expected 1 to 50 for H.264"), lossless.stderr)
  }

  func testLowerCRFMakesABiggerFile() throws {
    let input = try clip("smpte")
    // H.264, VP9 with alpha (vp9alphaenc) and VP9 over a backdrop (vp9enc).
    for (ext, options, margin) in [("mp4", [String](), 4000), ("webm", [], 2000), ("webm", ["--background", "green"], 2000)] {
      var sizes: [Int] = []
      for crf in ["10", "45"] {
        let output = directory.appendingPathComponent("crf\(crf).\(ext)").path
        let result = try backdrop(["compose", input, "-o", output, "--model", model, "--crf", crf, "-q"] + options)
        XCTAssertEqual(result.status, 0, "\(ext) \(options): \(result.stderr)")
        sizes.append((try FileManager.default.attributesOfItem(atPath: output)[.size] as? NSNumber)?.intValue ?? 0)
      }
      // The same sound in both: the difference is the picture's.
      XCTAssertGreaterThan(sizes[0], sizes[1] + margin, "\(ext) \(options): crf 10 keeps far more than crf 45: \(sizes)")
    }
  }

  func testEmptyMatteOnMostFramesIsAWarning() throws {
    let black = try clip("black")  // the luma key finds nothing in black
    let output = directory.appendingPathComponent("empty.webm").path
    let result = try backdrop(["compose", black, "-o", output, "--model", model])
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertTrue(result.stderr.contains("warning: the matte is empty on 6 of 6 frames"), result.stderr)
    XCTAssertTrue(result.stderr.contains("BiRefNet"), result.stderr)
    let json = try backdrop(["compose", black, "-o", output, "--model", model, "--json"])
    let warnings = jsonEvents(json.stdout).filter {
      $0["event"] as? String == "warning" && ($0["message"] as? String)?.contains("the matte is empty") == true
    }
    XCTAssertEqual(warnings.count, 1)

    let bars = try backdrop(["compose", try clip("smpte"), "-o", output, "--model", model])
    XCTAssertEqual(bars.status, 0, bars.stderr)
    XCTAssertFalse(bars.stderr.contains("the matte is empty"), "the white and yellow bars are found: \(bars.stderr)")
  }

  /// Where the bright ball is (the centroid of values ≥ 128) in a single-channel picture.
  func centroid(_ values: [UInt8], stride: Int = 1, offset: Int = 0) -> (x: Double, y: Double) {
    var sumX = 0.0, sumY = 0.0, count = 0.0
    for y in 0..<Self.height {
      for x in 0..<Self.width where values[(y * Self.width + x) * stride + offset] >= 128 {
        sumX += Double(x)
        sumY += Double(y)
        count += 1
      }
    }
    return count > 0 ? (sumX / count, sumY / count) : (-1, -1)
  }

  func testStartAndEndCutTheInputAndStartAtZero() throws {
    // 40 frames at 10 fps of a moving ball: --start 1 --end 2.5 keeps frames 10 to 24.
    let path = directory.appendingPathComponent("ball.webm").path
    try ComposeTests.makeClip(path, frames: 40, width: Self.width, height: Self.height, fps: Self.fps, pattern: "ball")
    let output = directory.appendingPathComponent("cut.webm").path
    let result = try backdrop(["compose", path, "-o", output, "--model", model, "--start", "1", "--end", "0:02.5", "--json"])
    XCTAssertEqual(result.status, 0, result.stderr)
    let file = try ffprobe(output)
    XCTAssertEqual(file.video?.frames, 15)
    XCTAssertEqual(file.duration, 1.5, accuracy: 0.05, "the output is 1.5 s long")
    XCTAssertNotNil(file.audio, "the sound is cut too")
    let start = jsonEvents(result.stdout).first { $0["event"] as? String == "start" }
    XCTAssertEqual(start?["total_frames"] as? Int, 15, "progress counts the cut part")
    // The first frame out is frame 10 of the input: the ball is where it was then.
    // The input's pictures only (its Vorbis sound stays undecoded).
    let raw = directory.appendingPathComponent("ball.gray").path
    try gstLaunch(["filesrc", "location=\(path)", "!", "matroskademux", "!", "vp8dec", "!", "videoconvert", "!",
                   "video/x-raw,format=GRAY8", "!", "filesink", "location=\(raw)"])
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw)))
    let size = Self.width * Self.height
    let source = stride(from: 0, to: bytes.count - size + 1, by: size).map { Array(bytes[$0..<$0 + size]) }
    XCTAssertEqual(source.count, 40)
    let cut = try decodeFrames(output, format: "RGBA", width: Self.width, height: Self.height)
    let first = centroid(cut[0], stride: 4, offset: 3)
    let distances = source.map { frame -> Double in
      let c = centroid(frame)
      return abs(c.x - first.x) + abs(c.y - first.y)
    }
    XCTAssertEqual(distances.firstIndex(of: distances.min()!), 10, "the ball of input frame 10: \(distances.map { Int($0) })")

    for (arguments, message) in [
      (["--start", "2", "--end", "1"], "--end must be after --start"),
      (["--start", "1:75"], "--start 1:75: expected seconds"),
      (["--start", "9"], "the input is only"),
    ] {
      let bad = try backdrop(["compose", path, "-o", output, "--model", model] + arguments)
      XCTAssertEqual(bad.status, 64, bad.stderr)
      XCTAssertTrue(bad.stderr.contains(message), bad.stderr)
    }
  }

  func testImageSequenceInput() throws {
    // Five PNG frames numbered from 1, as many tools write them.
    let folder = directory.appendingPathComponent("in")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    try gstLaunch(["videotestsrc", "num-buffers=5", "pattern=smpte", "!", "video/x-raw,width=\(Self.width),height=\(Self.height)",
                   "!", "videoconvert", "!", "pngenc", "!", "multifilesink", "index=1", "location=\(folder.path)/%04d.png"])
    let output = directory.appendingPathComponent("from-png.webm").path
    let result = try backdrop(["compose", folder.path + "/%04d.png", "-o", output, "--model", model, "--fps", "5", "-q"])
    XCTAssertEqual(result.status, 0, result.stderr)
    let file = try ffprobe(output)
    XCTAssertEqual(file.video?.frames, 5)
    XCTAssertEqual(file.duration, 1.0, accuracy: 0.05, "5 frames at 5 fps")
    XCTAssertNil(file.audio)
    let frames = try decodeFrames(output, format: "RGBA", width: Self.width, height: Self.height)
    XCTAssertGreaterThanOrEqual(frames.last.map { Int($0[(30 * Self.width + 10) * 4 + 3]) } ?? 0, 250, "white bar opaque")
    XCTAssertLessThanOrEqual(frames.last.map { Int($0[(30 * Self.width + 150) * 4 + 3]) } ?? 255, 5, "blue bar transparent")

    let missing = try backdrop(["compose", directory.path + "/none/%04d.png", "-o", output, "--model", model])
    XCTAssertEqual(missing.status, 66)
    XCTAssertTrue(missing.stderr.contains("no frames found: neither"), missing.stderr)
    let fps = try backdrop(["compose", folder.path + "/%04d.png", "-o", output, "--model", model, "--fps", "fast"])
    XCTAssertEqual(fps.status, 64)
    XCTAssertTrue(fps.stderr.contains("--fps fast: expected frames per second"), fps.stderr)
  }
}
