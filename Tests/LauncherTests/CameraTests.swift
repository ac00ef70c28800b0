// backdrop camera with a live test source in place of the camera: the recording, the measured
// latency, and that batch-timeout bounds the wait a large batch would add.
import Foundation
import XCTest

final class CameraTests: XCTestCase {
  var directory: URL!

  override func setUpWithError() throws { directory = try Launcher.temporaryDirectory() }
  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  func source(frames: Int, fps: Int) -> String {
    "videotestsrc is-live=true num-buffers=\(frames) pattern=smpte ! video/x-raw,width=160,height=96,framerate=\(fps)/1"
  }

  func camera(_ arguments: [String]) throws -> RunResult {
    var environment = Launcher.environment(cache: directory.appendingPathComponent("cache"))
    environment.removeValue(forKey: "DISPLAY")
    environment.removeValue(forKey: "WAYLAND_DISPLAY")
    return try runProgram(Launcher.executable, ["camera"] + arguments, environment: environment)
  }

  func latencyEvent(_ result: RunResult) throws -> [String: Any] {
    try XCTUnwrap(jsonEvents(result.stdout).first { $0["event"] as? String == "latency" }, result.stdout)
  }

  func testRecordsATransparentWebMAndPrintsTheLatency() throws {
    let output = directory.appendingPathComponent("cam.webm").path
    let arguments = ["--source", source(frames: 20, fps: 10), "-o", output, "--model", Launcher.designedModel("lumakey"),
                     "--size", "64x64", "--background", "none"]
    let result = try camera(arguments + ["--json"])
    XCTAssertEqual(result.status, 0, result.stderr)
    let latency = try latencyEvent(result)
    XCTAssertEqual(latency["captured_frames"] as? Int, 20)
    let frames = try XCTUnwrap(latency["frames"] as? Int)
    XCTAssertGreaterThan(frames, 10, "most frames matted at 10 fps")
    XCTAssertLessThanOrEqual(frames, 20)
    XCTAssertEqual(latency["batch_timeout_ms"] as? Int, 50)
    let matte = try XCTUnwrap(latency["matte_ms"] as? [String: Double])
    XCTAssertGreaterThan(try XCTUnwrap(matte["median"]), 0)
    XCTAssertLessThanOrEqual(try XCTUnwrap(matte["median"]), try XCTUnwrap(matte["max"]))
    XCTAssertGreaterThan(try XCTUnwrap(latency["pipeline_latency_ms"] as? Double), 0, "the element answers the LATENCY query")

    let file = try ffprobe(output)
    XCTAssertEqual(file.video?.frames, frames, "every matted frame recorded")
    XCTAssertEqual(file.video?.alphaMode, "1")
    let decoded = try decodeFrames(output, format: "RGBA", width: 160, height: 96)
    XCTAssertEqual(decoded.count, frames)
    XCTAssertGreaterThanOrEqual(decoded[0][(30 * 160 + 10) * 4 + 3], 250, "white bar opaque")
    XCTAssertLessThanOrEqual(decoded[0][(30 * 160 + 150) * 4 + 3], 5, "blue bar transparent")

    // Without --json: one line with the figures.
    let plain = try camera(arguments)
    XCTAssertEqual(plain.status, 0, plain.stderr)
    let pattern = try NSRegularExpression(pattern:
      #"latency over \d+ frames: in the matte median [0-9.]+ ms, p95 [0-9.]+ ms, max [0-9.]+ ms; capture to matte median [0-9.]+ ms, p95 [0-9.]+ ms, max [0-9.]+ ms; pipeline reports [0-9.]+ ms \(batch-timeout 50 ms\)"#)
    XCTAssertNotNil(pattern.firstMatch(in: plain.stderr, range: NSRange(plain.stderr.startIndex..., in: plain.stderr)), plain.stderr)
  }

  /// An interlaced source (an analogue capture card) is deinterlaced before the matte: the
  /// element gets whole frames (it warns when it gets woven ones) and the recording is progressive.
  func testInterlacedSourceIsDeinterlacedBeforeTheMatte() throws {
    let output = directory.appendingPathComponent("interlaced.webm").path
    let result = try camera([
      "--source", "videotestsrc is-live=true num-buffers=10 pattern=smpte ! "
        + "video/x-raw,width=160,height=96,framerate=10/1,interlace-mode=interleaved,field-order=top-field-first",
      "-o", output, "--model", Launcher.designedModel("lumakey"), "--size", "64x64", "--background", "none",
    ])
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertFalse(result.stderr.contains("got interlaced video"), result.stderr)
    let decoded = try decodeFrames(output, format: "RGBA", width: 160, height: 96)
    XCTAssertGreaterThan(decoded.count, 0)
    XCTAssertGreaterThanOrEqual(decoded[0][(30 * 160 + 10) * 4 + 3], 250, "white bar opaque")
    XCTAssertLessThanOrEqual(decoded[0][(30 * 160 + 150) * 4 + 3], 5, "blue bar transparent")
  }

  /// A batch of 8 at 10 fps makes its first frame wait 700 ms; a 30 ms batch-timeout bounds that.
  func testBatchTimeoutBoundsTheLatency() throws {
    func run(timeout: Int) throws -> [String: Double] {
      let result = try camera([
        "--source", source(frames: 24, fps: 10), "-o", directory.appendingPathComponent("t\(timeout).webm").path,
        "--model", Launcher.designedModel("lumakey"), "--size", "64x64", "--batch-size", "8",
        "--batch-timeout", "\(timeout)", "--json",
      ])
      XCTAssertEqual(result.status, 0, result.stderr)
      return try XCTUnwrap(try latencyEvent(result)["matte_ms"] as? [String: Double])
    }
    let bounded = try run(timeout: 30)
    let unbounded = try run(timeout: 0)
    XCTAssertGreaterThanOrEqual(try XCTUnwrap(unbounded["max"]), 690, "a full batch of 8 at 10 fps")
    XCTAssertLessThan(try XCTUnwrap(bounded["median"]), 300, "30 ms timeout plus a small inference")
    XCTAssertLessThan(try XCTUnwrap(bounded["max"]), try XCTUnwrap(unbounded["max"]))
  }

  func testStopsAfterTheDuration() throws {
    let output = directory.appendingPathComponent("timed.mp4").path
    let started = Date()
    let result = try camera([
      "--source", "videotestsrc is-live=true pattern=smpte ! video/x-raw,width=160,height=96,framerate=10/1",
      "-o", output, "--model", Launcher.designedModel("lumakey"), "--size", "64x64", "--duration", "2", "--json",
    ])
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertLessThan(Date().timeIntervalSince(started), 30)
    let file = try ffprobe(output)
    XCTAssertEqual(file.video?.codec, "h264")
    let frames = try XCTUnwrap(try latencyEvent(result)["frames"] as? Int)
    XCTAssertEqual(file.video?.frames, frames)
    XCTAssertGreaterThan(frames, 5)
    XCTAssertLessThanOrEqual(frames, 21, "about two seconds at 10 fps")
  }

  func testBadInput() throws {
    let noCamera = try camera(["--device", "/dev/nonexistent-camera", "-o", directory.appendingPathComponent("c.webm").path,
                               "--model", Launcher.designedModel("lumakey")])
    XCTAssertEqual(noCamera.status, 66)
    XCTAssertTrue(noCamera.stderr.contains("camera not found: /dev/nonexistent-camera"), noCamera.stderr)
    let noWindow = try camera(["--source", "videotestsrc is-live=true", "--window", "--model", Launcher.designedModel("lumakey")])
    XCTAssertEqual(noWindow.status, 69)
    XCTAssertTrue(noWindow.stderr.contains("no display for a window"), noWindow.stderr)
    let nothing = try camera(["--source", "videotestsrc is-live=true", "--model", Launcher.designedModel("lumakey")])
    XCTAssertEqual(nothing.status, 64)
    XCTAssertTrue(nothing.stderr.contains("nothing to show or record"), nothing.stderr)
  }
}
