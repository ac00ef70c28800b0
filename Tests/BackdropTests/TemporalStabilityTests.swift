// Temporal stabilisation and frame skipping (issue 9) measured on synthetic clips with exact
// ground truth (scripts/make-temporal-clip.py) and the designed luma-key model, which keys the
// subject from the picture and so wavers at the boundary under noise like a real model.
import CBackdropShim
import CGStreamer
import XCTest

final class TemporalStabilityTests: XCTestCase {
  let perFrame = [("temporal-smooth", "0")]
  let soft = [("matte-mode", "soft")]

  private func report(_ name: String, _ values: [(String, Double)]) {
    print("temporal: \(name): " + values.map { "\($0.0)=\(String(format: "%.5f", $0.1))" }.joined(separator: " "))
  }

  func testStaticFlickerDropsAtDefaultSettings() throws {
    let clip = try TemporalClip.make("static")
    for (mode, extra) in [("soft", soft), ("binary", [])] {
      let before = runClip(clip, extra + perFrame).mattes
      let after = runClip(clip, extra).mattes
      let flickerBefore = MatteMetrics.staticFlicker(before, truth: clip.alpha)
      let flickerAfter = MatteMetrics.staticFlicker(after, truth: clip.alpha)
      let madBefore = MatteMetrics.mad(before, truth: clip.alpha), madAfter = MatteMetrics.mad(after, truth: clip.alpha)
      let iouBefore = MatteMetrics.iou(before, truth: clip.alpha), iouAfter = MatteMetrics.iou(after, truth: clip.alpha)
      report("static \(mode)", [("flicker-per-frame", flickerBefore), ("flicker-default", flickerAfter),
                                ("mad-per-frame", madBefore), ("mad-default", madAfter),
                                ("iou-per-frame", iouBefore), ("iou-default", iouAfter)])
      XCTAssertGreaterThan(flickerBefore, 0.001, "\(mode): the per-frame matte must flicker for the test to mean anything")
      XCTAssertLessThanOrEqual(flickerAfter, 0.4 * flickerBefore, "\(mode): static flicker drops by at least 60 %")
      XCTAssertLessThanOrEqual(madAfter, madBefore, "\(mode): MAD no worse than per-frame")
      XCTAssertGreaterThanOrEqual(iouAfter, iouBefore, "\(mode): IoU no worse than per-frame")
    }
  }

  func testFastMotionDoesNotGhostOrLag() throws {
    let clip = try TemporalClip.make("move6")
    let before = runClip(clip, soft + perFrame).mattes
    let after = runClip(clip, soft).mattes
    let madBefore = MatteMetrics.mad(before, truth: clip.alpha), madAfter = MatteMetrics.mad(after, truth: clip.alpha)
    let dtBefore = MatteMetrics.dtSSD(before, truth: clip.alpha), dtAfter = MatteMetrics.dtSSD(after, truth: clip.alpha)
    // Lag: how far the stabilised subject's centre trails the per-frame one along the motion.
    let centresBefore = MatteMetrics.centroidsX(before, width: clip.width)
    let centresAfter = MatteMetrics.centroidsX(after, width: clip.width)
    let lags = zip(centresBefore, centresAfter).dropFirst().map { $0 - $1 }
    let lag = lags.reduce(0, +) / Double(lags.count)
    let worstLag = lags.map(abs).max() ?? 0
    let truthCentres = MatteMetrics.centroidsX(clip.alpha, width: clip.width)
    report("move6", [("mad-per-frame", madBefore), ("mad-default", madAfter), ("dtssd-per-frame", dtBefore),
                     ("dtssd-default", dtAfter), ("mean-lag-px", lag), ("worst-lag-px", worstLag),
                     ("subject-travel-px", truthCentres.last! - truthCentres.first!)])
    XCTAssertGreaterThan(truthCentres.last! - truthCentres.first!, 100, "the subject really moves 6 px a frame")
    // Measured 0.00476 against 0.00516: no worse than per-frame, as the issue asks.
    XCTAssertLessThanOrEqual(madAfter, madBefore, "MAD no worse than per-frame")
    XCTAssertLessThanOrEqual(dtAfter, dtBefore, "dtSSD no worse than per-frame (no ghosting)")
    XCTAssertLessThan(abs(lag), 1.0, "the moving edge lags less than 1 px on average")
    XCTAssertLessThan(worstLag, 1.0, "and on every frame")
  }

  func testInferIntervalThreeRunsTheModelOnEveryThirdFrame() throws {
    let clip = try TemporalClip.make("move2")
    let every = runClip(clip, soft)
    let third = runClip(clip, soft + [("infer-interval", "3")])
    let expected = UInt64((clip.count + 2) / 3)
    XCTAssertEqual(every.inferred, UInt64(clip.count))
    XCTAssertEqual(every.skipped, 0)
    XCTAssertEqual(third.frames, UInt64(clip.count))
    XCTAssertEqual(third.inferred, expected, "the model runs ⌈n/3⌉ times")
    XCTAssertEqual(third.skipped, UInt64(clip.count) - expected)
    let madEvery = MatteMetrics.mad(every.mattes, truth: clip.alpha)
    let madThird = MatteMetrics.mad(third.mattes, truth: clip.alpha)
    report("move2 k=3", [("mad-k1", madEvery), ("mad-k3", madThird), ("inferred", Double(third.inferred))])
    XCTAssertLessThanOrEqual(madThird, madEvery * 1.1, "MAD within 10 % of k = 1")
    XCTAssertTrue(third.mattes[0] == every.mattes[0], "the first frame is inferred in both")
  }

  func testSkipSimilarSkipsAStaticClip() throws {
    let clip = try TemporalClip.make("static")
    let run = runClip(clip, soft + [("skip-similar", "35")])
    report("static skip-similar=35", [("skipped", Double(run.skipped)), ("inferred", Double(run.inferred))])
    XCTAssertEqual(run.frames, UInt64(clip.count))
    XCTAssertGreaterThanOrEqual(Double(run.skipped), 0.8 * Double(clip.count), "at least 80 % of a static clip is skipped")
    XCTAssertEqual(run.skipped + run.inferred, UInt64(clip.count))
    XCTAssertEqual(run.sceneCuts, 0)
  }

  func testSceneCutForcesInferenceAndResets() throws {
    let clip = try TemporalClip.make("cut")
    let cut = clip.cut
    XCTAssertGreaterThan(cut, 0)
    let reference = runClip(clip, soft + perFrame).mattes
    for settings in [soft, soft + [("skip-similar", "10")], soft + [("infer-interval", "5")]] {
      let run = runClip(clip, settings)
      XCTAssertEqual(run.sceneCuts, 1, "\(settings): one cut detected")
      XCTAssertTrue(run.mattes[cut] == reference[cut], "\(settings): the frame after a cut equals the per-frame output")
      XCTAssertFalse(run.mattes[cut - 1] == reference[cut - 1], "\(settings): before the cut the state was in use")
      XCTAssertGreaterThan(run.inferred, 1)
    }
    // skip-similar=10 skips every frame of this clip but the first and the first after the cut.
    let skipping = runClip(clip, soft + [("skip-similar", "10")])
    XCTAssertEqual(skipping.inferred, 2, "the first frame and the frame after the cut")
    XCTAssertEqual(skipping.skipped, UInt64(clip.count - 2))
  }

  func testBatchSizesGiveIdenticalOutput() throws {
    let clip = try TemporalClip.make("move2", frames: 15)
    for settings in [soft, [("infer-interval", "2"), ("skip-similar", "38")]] {
      let one = runClip(clip, settings + [("batch-size", "1")])
      for batch in ["4", "7"] {
        let other = runClip(clip, settings + [("batch-size", batch)])
        XCTAssertTrue(other.mattes == one.mattes, "\(settings): batch size \(batch) equals batch size 1")
        XCTAssertEqual(other.inferred, one.inferred)
      }
    }
  }

  func testFlushAndDiscontResetTheState() throws {
    let clip = try TemporalClip.make("move2", frames: 12)
    let fresh = runClip(clip, soft + [("batch-size", "4")], range: 6..<12).mattes
    // Flush in the middle (a seek): what follows equals a fresh stream from that frame.
    let harness = matteHarness(for: clip, soft + [("batch-size", "4")])
    for index in 0..<6 { harness.push(clip.buffer(index)) }
    XCTAssertTrue(harness.pushEvent(gst_event_new_flush_start()))
    XCTAssertTrue(harness.pushEvent(gst_event_new_flush_stop(1)))
    var segment = GstSegment()
    gst_segment_init(&segment, GST_FORMAT_TIME)
    XCTAssertTrue(harness.pushEvent(gst_event_new_segment(&segment)))
    harness.pullAvailable().forEach { gst_buffer_unref($0) }
    for index in 6..<12 { harness.push(clip.buffer(index)) }
    XCTAssertTrue(harness.pushEvent(gst_event_new_eos()))
    let afterFlush = harness.pullAvailable()
    XCTAssertTrue(afterFlush.map { clip.matte($0) } == fresh, "after a flush the output equals a fresh stream")
    afterFlush.forEach { gst_buffer_unref($0) }

    // A DISCONT buffer in the middle of a batch: the same.
    let discont = matteHarness(for: clip, soft + [("batch-size", "4")])
    for index in 0..<12 { discont.push(clip.buffer(index, discont: index == 6)) }
    XCTAssertTrue(discont.pushEvent(gst_event_new_eos()))
    let outputs = discont.pullAvailable()
    let mattes = outputs.map { clip.matte($0) }
    outputs.forEach { gst_buffer_unref($0) }
    XCTAssertEqual(mattes.count, 12)
    XCTAssertTrue(Array(mattes[6...]) == fresh, "after a DISCONT buffer the output equals a fresh stream")
    let continuous = runClip(clip, soft + [("batch-size", "4")]).mattes
    XCTAssertFalse(continuous[6] == fresh[0], "without the reset frame 6 would have differed")
  }

  /// Real footage: pedestrians from a fixed camera (vtest.avi, Debian's opencv-doc) through the
  /// real selfie model with the binary matte, per frame and stabilised.
  func testRealFootageFlipsLessWhenStabilised() throws {
    let video = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
    let selfie = TestEnvironment.packageRoot.appendingPathComponent("models/selfie/selfie.pt").path
    guard FileManager.default.fileExists(atPath: video) else { throw XCTSkip("\(video) missing: install opencv-doc") }
    guard FileManager.default.fileExists(atPath: selfie) else { throw XCTSkip("selfie.pt missing: run scripts/setup-models.sh") }
    let script = TestEnvironment.packageRoot.appendingPathComponent("scripts/temporal-footage.py").path
    let result = try runTool("/usr/bin/python3", [script, "--video", video, "--model", selfie,
                                                  "--plugin-dir", pluginOnlyDirectory.path, "--frames", "40"])
    XCTAssertEqual(result.status, 0, result.stderr)
    print(result.stdout)
    func flipShare(_ run: String) -> Double? {
      guard let line = result.stdout.split(separator: "\n").first(where: { $0.hasPrefix(run) }),
        let range = line.range(of: "flipping ") else { return nil }
      return Double(line[range.upperBound...].prefix { $0 != " " })
    }
    let before = try XCTUnwrap(flipShare("per-frame"), result.stdout)
    let after = try XCTUnwrap(flipShare("stabilised"), result.stdout)
    XCTAssertGreaterThan(before, 10, "selfie's binary matte flickers on this footage (percent of static subject pixels)")
    XCTAssertLessThanOrEqual(after, before * 0.4, "stabilised: at least 60 % fewer flips")
  }

  func testStatsPropertyIsAStructure() throws {
    let clip = try TemporalClip.make("static", frames: 6)
    let harness = matteHarness(for: clip, [("infer-interval", "2"), ("batch-size", "1")])
    XCTAssertEqual(elementStats(harness.element), ["": 1, "frames": 0, "inferred": 0, "skipped": 0, "scene-cuts": 0])
    for index in 0..<5 { harness.push(clip.buffer(index)) }
    harness.pullAvailable().forEach { gst_buffer_unref($0) }
    XCTAssertEqual(elementStats(harness.element), ["": 1, "frames": 5, "inferred": 3, "skipped": 2, "scene-cuts": 0])
  }
}
