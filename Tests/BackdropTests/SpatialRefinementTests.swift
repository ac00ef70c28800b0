// Issue 9, spatial half: edge refinement, foreground colour and the resolution cascade, measured
// through birefnetmatte against seeded synthetic stills with exact ground truth
// (Tests/Spatial/scene.py: a soft-edged subject with hair-like strokes over a textured, coloured
// background) and the designed linear-key model models/designed/softkey.pt. Metrics come from
// Tests/Spatial/metrics.py (numpy) on the element's raw output.
import CBackdropShim
import CGStreamer
import Foundation
import XCTest

final class SpatialRefinementTests: XCTestCase {
  static let python = "/usr/bin/python3"
  static let spatialFolder = TestEnvironment.packageRoot.appendingPathComponent("Tests/Spatial")

  struct Scene {
    let folder: URL
    let width: Int
    let height: Int
  }

  var temporary: URL!

  override func setUpWithError() throws {
    guard FileManager.default.isExecutableFile(atPath: Self.python),
          (try? runTool(Self.python, ["-c", "import numpy"]).status) == 0 else {
      throw XCTSkip("needs Debian's python3-numpy at \(Self.python) to make the ground-truth scenes")
    }
    temporary = try TestEnvironment.temporaryDirectory()
  }

  override func tearDownWithError() throws {
    if let temporary { try? FileManager.default.removeItem(at: temporary) }
  }

  func makeScene(_ name: String, width: Int, height: Int, strokeWidth: Double, frames: Int = 1) throws -> Scene {
    let folder = temporary.appendingPathComponent(name)
    let result = try runTool(Self.python, [Self.spatialFolder.appendingPathComponent("scene.py").path, folder.path,
                                           "--width", "\(width)", "--height", "\(height)",
                                           "--stroke-width", "\(strokeWidth)", "--frames", "\(frames)"])
    XCTAssertEqual(result.status, 0, result.stderr)
    return Scene(folder: folder, width: width, height: height)
  }

  /// Runs the scene's frames through birefnetmatte (soft-key model, soft matte) into raw RGBA.
  /// `yuv`: the element works on I420 in and out (videoconvert around it), as most decoders feed it.
  func matte(_ scene: Scene, _ properties: String, input: String = "frame0.rgba", output: String, yuv: Bool = false,
             file: StaticString = #filePath, line: UInt = #line) -> URL {
    let outputURL = scene.folder.appendingPathComponent(output)
    let description = "filesrc location=\(scene.folder.appendingPathComponent(input).path) ! "
      + "rawvideoparse format=rgba width=\(scene.width) height=\(scene.height) framerate=25/1 ! "
      + (yuv ? "videoconvert ! video/x-raw,format=I420,colorimetry=bt709 ! " : "")
      + "birefnetmatte model-file=\(TestEnvironment.designedModel("softkey")) device=cpu matte-mode=soft "
      + "\(properties) ! "
      + (yuv ? "video/x-raw,format=I420 ! videoconvert ! " : "")
      + "video/x-raw,format=RGBA ! filesink location=\(outputURL.path)"
    let run = runPipeline(description, timeout: 300)
    XCTAssertEqual(run.errors, [], file: file, line: line)
    XCTAssertTrue(run.reachedEOS, file: file, line: line)
    return outputURL
  }

  /// metrics.py's JSON for one output.
  func metrics(_ scene: Scene, _ kind: String, _ output: URL, _ extra: [String] = [],
               file: StaticString = #filePath, line: UInt = #line) throws -> [String: Double] {
    let result = try runTool(Self.python, [Self.spatialFolder.appendingPathComponent("metrics.py").path,
                                           scene.folder.path, "0", kind, output.path] + extra)
    XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
    let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
    return object.compactMapValues { ($0 as? NSNumber)?.doubleValue }
  }

  /// 1080p: the guided filter steered by the frame lowers the gradient error against the truth by
  /// at least 20 % compared with bilinear upsampling of the 512² matte, at equal or lower MAD.
  func testGuidedEdgeRefinementBeatsBilinearAt1080p() throws {
    let scene = try makeScene("edges", width: 1920, height: 1080, strokeWidth: 1.5)
    let common = "foreground-estimate=false cascade=off"
    let bilinear = try metrics(scene, "alpha", matte(scene, "edge-refine=none \(common)", output: "bilinear.rgba"))
    let guided = try metrics(scene, "alpha", matte(scene, "edge-refine=guided \(common)", output: "guided.rgba"))
    let (gradBilinear, gradGuided) = (try XCTUnwrap(bilinear["grad"]), try XCTUnwrap(guided["grad"]))
    let (madBilinear, madGuided) = (try XCTUnwrap(bilinear["mad"]), try XCTUnwrap(guided["mad"]))
    print("edge refinement 1080p: bilinear grad \(gradBilinear) mad \(madBilinear); guided grad \(gradGuided) mad \(madGuided)")
    XCTAssertLessThanOrEqual(gradGuided, 0.8 * gradBilinear, "gradient error must drop by at least 20 %")
    XCTAssertLessThanOrEqual(madGuided, madBilinear, "MAD must not grow")
    // The measurement can fail: bilinear really is blurred against the truth.
    XCTAssertGreaterThan(gradBilinear, 0)
  }

  /// Composites over a new colour, and straight-alpha RGBA: estimating the subject's colour in
  /// semi-transparent pixels lowers the colour error there by at least 30 %.
  func testForegroundEstimateRemovesTheOldBackgroundFromEdges() throws {
    let scene = try makeScene("colour", width: 1920, height: 1080, strokeWidth: 1.5)
    let backdrop = "background=color background-color=0xff3366cc"
    let plain = try metrics(scene, "composite", matte(scene, "\(backdrop) foreground-estimate=false", output: "plain.rgba"), ["51", "102", "204"])
    let estimated = try metrics(scene, "composite", matte(scene, "\(backdrop) foreground-estimate=true", output: "estimated.rgba"), ["51", "102", "204"])
    let (before, after) = (try XCTUnwrap(plain["colour_error"]), try XCTUnwrap(estimated["colour_error"]))
    print("foreground estimate, composite edge colour error: \(before) → \(after)")
    XCTAssertLessThanOrEqual(after, 0.7 * before, "composite edge colour error must drop by at least 30 %")
    XCTAssertGreaterThan(try XCTUnwrap(plain["partial_pixels"]), 10_000)

    let straightPlain = try metrics(scene, "straight", matte(scene, "foreground-estimate=false", output: "straight-plain.rgba"))
    let straightEstimated = try metrics(scene, "straight", matte(scene, "foreground-estimate=true", output: "straight-estimated.rgba"))
    let (straightBefore, straightAfter) = (try XCTUnwrap(straightPlain["colour_error"]), try XCTUnwrap(straightEstimated["colour_error"]))
    print("foreground estimate, straight RGBA edge colour error: \(straightBefore) → \(straightAfter)")
    XCTAssertLessThanOrEqual(straightAfter, 0.7 * straightBefore, "straight-alpha edge colour error must drop by at least 30 %")

    // The same on Y'CbCr planes (I420 in and out): the estimate runs on code values there.
    let yuvPlain = try metrics(scene, "composite", matte(scene, "\(backdrop) foreground-estimate=false", output: "yuv-plain.rgba", yuv: true), ["51", "102", "204"])
    let yuvEstimated = try metrics(scene, "composite", matte(scene, "\(backdrop) foreground-estimate=true", output: "yuv-estimated.rgba", yuv: true), ["51", "102", "204"])
    let (yuvBefore, yuvAfter) = (try XCTUnwrap(yuvPlain["colour_error"]), try XCTUnwrap(yuvEstimated["colour_error"]))
    print("foreground estimate, I420 composite edge colour error: \(yuvBefore) → \(yuvAfter)")
    XCTAssertLessThanOrEqual(yuvAfter, 0.7 * yuvBefore, "I420 composite edge colour error must drop by at least 30 %")
  }

  /// 4K with 1-px strokes: re-inferring the uncertain band in 512-px tiles lowers the MAD in the
  /// stroke band by at least 30 % against the single 512² pass.
  func testCascadeRecoversOnePixelStrokesAt4K() throws {
    let scene = try makeScene("cascade", width: 3840, height: 2160, strokeWidth: 1)
    let common = "edge-refine=guided foreground-estimate=false inference-width=512 inference-height=512"
    let single = try metrics(scene, "alpha", matte(scene, "cascade=off \(common)", output: "single.rgba"))
    let cascade = try metrics(scene, "alpha", matte(scene, "cascade=auto cascade-size=512 \(common)", output: "cascade.rgba"))
    let (before, after) = (try XCTUnwrap(single["stroke_mad"]), try XCTUnwrap(cascade["stroke_mad"]))
    print("cascade 4K stroke-band MAD: single \(before) → cascade \(after); MAD \(single["mad"] ?? -1) → \(cascade["mad"] ?? -1)")
    XCTAssertGreaterThan(try XCTUnwrap(single["stroke_pixels"]), 10_000)
    XCTAssertLessThanOrEqual(after, 0.7 * before, "stroke-band MAD must drop by at least 30 %")
    XCTAssertLessThanOrEqual(try XCTUnwrap(cascade["mad"]), try XCTUnwrap(single["mad"]) * 1.05, "the whole picture must not get worse")
  }

  /// Batch sizes 1, 4 and 7 give byte-identical output with every spatial option on (cascade
  /// tiles, guided upsampling, foreground colour), for straight alpha and for a composite, and
  /// with temporal-lookahead (whose held frame carries its cascade tiles into the next batch).
  func testBatchSizesGiveIdenticalOutputWithEveryOptionOn() throws {
    let scene = try makeScene("batches", width: 640, height: 360, strokeWidth: 1, frames: 7)
    let everything = "edge-refine=guided foreground-estimate=true cascade=auto cascade-size=128 "
      + "inference-width=128 inference-height=128"
    for backdrop in ["background=none", "background=color background-color=0xff3366cc", "background=none temporal-lookahead=true"] {
      var outputs: [Int: Data] = [:]
      for batch in [1, 4, 7] {
        let url = matte(scene, "\(everything) \(backdrop) batch-size=\(batch)", input: "frames.rgba", output: "batch\(batch).rgba")
        outputs[batch] = try Data(contentsOf: url)
      }
      XCTAssertEqual(outputs[1]?.count, 7 * 640 * 360 * 4, backdrop)
      XCTAssertTrue(outputs[1] == outputs[4], "\(backdrop): batch 4 differs from batch 1")
      XCTAssertTrue(outputs[1] == outputs[7], "\(backdrop): batch 7 differs from batch 1")
      // The options did something: the frames' semi-transparent alpha and moving subject differ.
      let frameBytes = 640 * 360 * 4
      XCTAssertNotEqual(outputs[1]?.prefix(frameBytes), outputs[1]?.suffix(frameBytes), backdrop)
    }
    // Every option really changes the output compared with all of them off.
    let off = try Data(contentsOf: matte(scene, "edge-refine=none foreground-estimate=false cascade=off inference-width=128 inference-height=128", input: "frames.rgba", output: "off.rgba"))
    let on = try Data(contentsOf: scene.folder.appendingPathComponent("batch1.rgba"))
    XCTAssertNotEqual(off, on)
  }
}
