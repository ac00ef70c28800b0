// examples/python/matte_frames.py: birefnetmatte driven from Python through PyGObject, frames as
// NumPy arrays from an appsink. Run with Debian's python3-gi on SMPTE bars and the luma-key model
// (the white bar is the subject, the blue bar the background).
import Foundation
import XCTest

final class PythonEmbeddingTests: XCTestCase {
  static let width = 140, height = 84, frames = 5
  var directory: URL!
  var clip: String { directory.appendingPathComponent("bars.webm").path }

  override func setUpWithError() throws {
    directory = try TestEnvironment.temporaryDirectory()
    let run = runPipeline(
      "videotestsrc num-buffers=\(Self.frames) pattern=smpte ! video/x-raw,width=\(Self.width),height=\(Self.height),framerate=10/1 ! "
        + "videoconvert ! vp8enc deadline=1 min-quantizer=0 max-quantizer=4 ! webmmux ! filesink location=\(clip)")
    XCTAssertTrue(run.reachedEOS, "making the clip: \(run.errors)")
  }

  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  /// Runs Python code with examples/python importable; returns its stdout.
  func python(_ code: String) throws -> ToolResult {
    let script = directory.appendingPathComponent("check.py")
    try ("import sys\nsys.path.insert(0, '\(TestEnvironment.packageRoot.path)/examples/python')\n" + code)
      .write(to: script, atomically: true, encoding: .utf8)
    return try runTool("/usr/bin/python3", [script.path])
  }

  func testFramesArriveAsRGBAArraysWithTheMatteAsAlpha() throws {
    let result = try python("""
      import json
      from matte_frames import matte_frames
      frames = []
      for pts, rgba in matte_frames('\(clip)', '\(TestEnvironment.designedModel("lumakey"))', 64, 64):
          frames.append({"pts": pts, "shape": list(rgba.shape), "dtype": str(rgba.dtype),
                         "subject": rgba[28, 10].tolist(), "background": rgba[28, 130].tolist()})
      print(json.dumps(frames))
      """)
    XCTAssertEqual(result.status, 0, result.stderr)
    let frames = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
    XCTAssertEqual(frames.count, Self.frames)
    XCTAssertEqual(frames.map { ($0["pts"] as? NSNumber)?.int64Value }, (0..<Self.frames).map { Int64($0) * 100_000_000 })
    for frame in frames {
      XCTAssertEqual(frame["shape"] as? [Int], [Self.height, Self.width, 4])
      XCTAssertEqual(frame["dtype"] as? String, "uint8")
      let subject = try XCTUnwrap(frame["subject"] as? [Int]), background = try XCTUnwrap(frame["background"] as? [Int])
      XCTAssertEqual(subject[3], 255, "white bar opaque")
      XCTAssertTrue(subject[0...2].allSatisfy { $0 > 200 }, "white bar keeps its colour: \(subject)")
      XCTAssertEqual(background[3], 0, "blue bar transparent")
    }
  }

  func testPipelineErrorsBecomePythonExceptions() throws {
    let result = try python("""
      from matte_frames import matte_frames, PipelineError
      try:
          next(matte_frames('\(clip)', '/nonexistent/model.pt'))
      except PipelineError as error:
          print('error:', error)
      """)
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertTrue(result.stdout.contains("error: matte") && result.stdout.contains("/nonexistent/model.pt"), result.stdout)
  }

  func testCommandLine() throws {
    let save = directory.appendingPathComponent("npy")
    let result = try runTool("/usr/bin/python3", [
      TestEnvironment.packageRoot.appendingPathComponent("examples/python/matte_frames.py").path, clip,
      TestEnvironment.designedModel("lumakey"), "--frames", "2", "--size", "64x64", "--save", save.path,
    ])
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertEqual(result.stdout.split(separator: "\n").count, 2, result.stdout)
    XCTAssertTrue(result.stdout.hasPrefix("frame 0 at 0.000 s: 140x84, "), result.stdout)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: save.path).sorted(), ["frame00000.npy", "frame00001.npy"])
  }
}
