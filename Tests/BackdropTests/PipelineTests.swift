// Real pipelines through gst_parse_launch: test sources through birefnetmatte into files whose
// bytes the tests read back.
import CBackdropShim
import CGStreamer
import XCTest

final class PipelineTests: XCTestCase {
  let model = TestEnvironment.designedModel("lumakey")

  func testWhiteAndBlackFramesGiveFullAndEmptyMattes() throws {
    let directory = try TestEnvironment.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    for (pattern, expected) in [("white", UInt8(255)), ("black", UInt8(0))] {
      let path = directory.appendingPathComponent("\(pattern).gray").path
      let run = runPipeline(
        "videotestsrc num-buffers=7 pattern=\(pattern) ! video/x-raw,format=I420,width=80,height=60,framerate=30/1 ! "
          + "birefnetmatte model-file=\(model) device=cpu batch-size=3 inference-width=64 inference-height=64 ! "
          + "video/x-raw,format=GRAY8 ! filesink location=\(path)")
      XCTAssertTrue(run.reachedEOS, "\(pattern): \(run.errors)")
      let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
      XCTAssertEqual(bytes.count, 7 * 80 * 60, "7 frames of 80×60 (the last batch of 1 drains at EOS)")
      XCTAssertEqual(Set(bytes), [expected], "every matte pixel of a \(pattern) frame")
    }
  }

  func testBallPatternMatteFollowsTheBall() throws {
    // videotestsrc's ball: a white disc on black. The matte must be 255 at the ball's centre
    // and 0 in the corners, frame after frame as the ball moves.
    let directory = try TestEnvironment.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("ball.rgba").path
    let run = runPipeline(
      "videotestsrc num-buffers=4 pattern=ball ! video/x-raw,format=RGBx,width=160,height=120 ! "
        + "birefnetmatte model-file=\(model) device=cpu inference-width=160 inference-height=128 ! "
        + "video/x-raw,format=RGBA ! filesink location=\(path)")
    XCTAssertTrue(run.reachedEOS, "\(run.errors)")
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    XCTAssertEqual(bytes.count, 4 * 160 * 120 * 4)
    for frame in 0..<4 {
      let base = frame * 160 * 120 * 4
      func pixel(_ x: Int, _ y: Int) -> [UInt8] { Array(bytes[(base + (y * 160 + x) * 4)..<(base + (y * 160 + x) * 4 + 4)]) }
      // The brightest pixel is inside the ball: its alpha is opaque; corners are transparent.
      var brightest = (0, 0), best = -1
      for y in 0..<120 { for x in 0..<160 { let p = pixel(x, y); if Int(p[0]) + Int(p[1]) + Int(p[2]) > best { best = Int(p[0]) + Int(p[1]) + Int(p[2]); brightest = (x, y) } } }
      XCTAssertEqual(pixel(brightest.0, brightest.1)[3], 255, "frame \(frame): alpha at the ball")
      XCTAssertEqual(pixel(0, 0)[3], 0, "frame \(frame): alpha in a corner")
      XCTAssertEqual(pixel(159, 119)[3], 0, "frame \(frame): alpha in a corner")
    }
  }

  func testGreenScreenIntoAnEncodedFile() throws {
    // birefnetmatte inside an ordinary encode: composite on green → x264 → MP4, decoded back.
    let directory = try TestEnvironment.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let mp4 = directory.appendingPathComponent("green.mp4").path
    let raw = directory.appendingPathComponent("decoded.rgb").path
    let encode = runPipeline(
      "videotestsrc num-buffers=10 pattern=black ! video/x-raw,width=64,height=48,framerate=10/1 ! "
        + "birefnetmatte model-file=\(model) device=cpu background=green inference-width=64 inference-height=64 ! "
        + "videoconvert ! avenc_mpeg4 bitrate=2000000 ! mp4mux ! filesink location=\(mp4)")
    XCTAssertTrue(encode.reachedEOS, "\(encode.errors)")
    let decode = runPipeline("filesrc location=\(mp4) ! decodebin ! videoconvert ! video/x-raw,format=RGB ! filesink location=\(raw)")
    XCTAssertTrue(decode.reachedEOS, "\(decode.errors)")
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw)))
    XCTAssertEqual(bytes.count, 10 * 64 * 48 * 3, "10 frames decoded")
    let centre = (24 * 64 + 32) * 3
    XCTAssertEqual(Double(bytes[centre + 1]), 255, accuracy: 12, "green channel")
    XCTAssertEqual(Double(bytes[centre]), 0, accuracy: 12, "red channel")
  }

  func testTwoInstancesInOneGraph() throws {
    // tee: the original and the matted branch side by side, sharing one model in the engine.
    let directory = try TestEnvironment.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let a = directory.appendingPathComponent("a.gray").path, b = directory.appendingPathComponent("b.gray").path
    let run = runPipeline(
      "videotestsrc num-buffers=5 pattern=white ! video/x-raw,width=32,height=32 ! tee name=t "
        + "t. ! queue ! birefnetmatte model-file=\(model) device=cpu inference-width=32 inference-height=32 ! video/x-raw,format=GRAY8 ! filesink location=\(a) "
        + "t. ! queue ! birefnetmatte model-file=\(model) device=cpu inference-width=32 inference-height=32 batch-size=2 ! video/x-raw,format=GRAY8 ! filesink location=\(b)")
    XCTAssertTrue(run.reachedEOS, "\(run.errors)")
    for path in [a, b] {
      let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
      XCTAssertEqual(bytes.count, 5 * 32 * 32)
      XCTAssertEqual(Set(bytes), [255])
    }
  }
}
