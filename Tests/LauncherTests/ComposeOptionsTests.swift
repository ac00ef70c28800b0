// Smaller compose options a new user asked for: output quality (--crf/--bitrate) mapped onto each
// encoder, and the warning when the model finds nobody on most frames.
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
    var sizes: [Int] = []
    for crf in ["10", "45"] {
      let output = directory.appendingPathComponent("crf\(crf).mp4").path
      let result = try backdrop(["compose", input, "-o", output, "--model", model, "--crf", crf, "-q"])
      XCTAssertEqual(result.status, 0, result.stderr)
      sizes.append((try FileManager.default.attributesOfItem(atPath: output)[.size] as? NSNumber)?.intValue ?? 0)
    }
    // The same AAC sound in both: the difference is the picture's.
    XCTAssertGreaterThan(sizes[0], sizes[1] + 4000, "crf 10 keeps far more than crf 45: \(sizes)")
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
}
