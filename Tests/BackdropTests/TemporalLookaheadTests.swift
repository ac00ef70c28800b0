// temporal-lookahead (issue 9): each frame's matte also sees the next frame, so a matte that changes
// for one frame only is replaced; the element holds one frame more, drains it at EOS and flushes
// it at a seek. Measured on the synthetic clips (TemporalClip.swift) with the luma-key model.
import CBackdropShim
import CGStreamer
import CGStreamerCheck
import XCTest

final class TemporalLookaheadTests: XCTestCase {
  let soft = [("matte-mode", "soft")]
  let lookahead = [("temporal-lookahead", "true")]

  private func report(_ name: String, _ values: [(String, Double)]) {
    print("lookahead: \(name): " + values.map { "\($0.0)=\(String(format: "%.5f", $0.1))" }.joined(separator: " "))
  }

  /// The static clip with frame `blip` darkened to 45 % (an exposure hiccup): the luma key loses
  /// the subject in that frame only, and confidently, as a model blinks.
  private func blipClip(blip: Int) throws -> TemporalClip {
    let clip = try TemporalClip.make("static", frames: 12)
    var frames = clip.frames
    frames[blip] = frames[blip].map { UInt8((Double($0) * 0.45).rounded()) }
    return TemporalClip(width: clip.width, height: clip.height, count: clip.count, cut: clip.cut,
                        frames: frames, alpha: clip.alpha)
  }

  /// Share of the subject's core (ground truth fully opaque) that the matte calls foreground.
  private func coreShare(_ matte: [UInt8], truth: [UInt8]) -> Double {
    var inside = 0, kept = 0
    for i in 0..<matte.count where truth[i] == 255 {
      inside += 1
      if matte[i] >= 128 { kept += 1 }
    }
    return Double(kept) / Double(max(inside, 1))
  }

  /// Mean |a − b| of two mattes, in 0...1.
  private func meanDifference(_ a: [UInt8], _ b: [UInt8]) -> Double {
    var sum = 0
    for i in 0..<a.count { sum += abs(Int(a[i]) - Int(b[i])) }
    return Double(sum) / Double(a.count) / 255
  }

  func testLookaheadRemovesASingleFrameBlip() throws {
    let blip = 6
    let clip = try blipClip(blip: blip)
    for (mode, extra) in [("soft", soft), ("binary", [])] {
      let without = runClip(clip, extra).mattes
      let with = runClip(clip, extra + lookahead).mattes
      let shareWithout = coreShare(without[blip], truth: clip.alpha[blip])
      let shareWith = coreShare(with[blip], truth: clip.alpha[blip])
      // The blip frame against its neighbour, over the whole frame.
      let jump = meanDifference(with[blip], with[blip - 1])
      let jumpWithout = meanDifference(without[blip], without[blip - 1])
      let usualJump = meanDifference(with[blip - 2], with[blip - 3])
      let madWithout = MatteMetrics.mad(without, truth: clip.alpha)
      let madWith = MatteMetrics.mad(with, truth: clip.alpha)
      report("blip \(mode)", [("core-kept-without", shareWithout), ("core-kept-with", shareWith),
                              ("jump-with", jump), ("jump-without", jumpWithout), ("usual-jump", usualJump), ("mad-without", madWithout), ("mad-with", madWith)])
      XCTAssertLessThan(shareWithout, 0.2, "\(mode): without look-ahead the subject vanishes in the blip frame")
      XCTAssertGreaterThan(shareWith, 0.99, "\(mode): look-ahead keeps the subject in the blip frame")
      XCTAssertLessThan(jump, 0.01, "\(mode): the blip frame's matte is its neighbour's within 1 %")
      XCTAssertLessThan(madWith, madWithout, "\(mode): MAD against the truth drops")
      XCTAssertTrue(with[0] == without[0], "\(mode): a stream's first frame (no history) keeps its own matte")
    }
  }

  func testEveryFrameArrivesWithItsTimestampsAndBatchSizesAgree() throws {
    let clip = try TemporalClip.make("move2", frames: 15)
    var reference: [[UInt8]]? = nil
    for batch in ["1", "4", "7"] {
      let harness = matteHarness(for: clip, soft + lookahead + [("batch-size", batch)])
      for index in 0..<clip.count {
        XCTAssertEqual(harness.push(clip.buffer(index, discont: index == 0)), GST_FLOW_OK)
      }
      // One frame is always held back until its successor (or EOS) arrives.
      let beforeEOS = harness.pullAvailable()
      XCTAssertEqual(beforeEOS.count, (clip.count / Int(batch)!) * Int(batch)! - 1, "batch \(batch): frames out before EOS")
      XCTAssertTrue(harness.pushEvent(gst_event_new_eos()))
      let outputs = beforeEOS + harness.pullAvailable()
      XCTAssertEqual(outputs.count, clip.count, "batch \(batch): every frame comes out, the held one at EOS")
      XCTAssertEqual(outputs.map { $0.pointee.pts }, (0..<clip.count).map { UInt($0) * TemporalClip.frameDuration },
                     "batch \(batch): timestamps in order")
      XCTAssertEqual(outputs.map { $0.pointee.duration }, Array(repeating: TemporalClip.frameDuration, count: clip.count))
      XCTAssertNotEqual(outputs[0].pointee.mini_object.flags & GST_BUFFER_FLAG_DISCONT.rawValue, 0, "flags travel with their frame")
      XCTAssertEqual(outputs[1].pointee.mini_object.flags & GST_BUFFER_FLAG_DISCONT.rawValue, 0)
      let mattes = outputs.map { clip.matte($0) }
      outputs.forEach { gst_buffer_unref($0) }
      if let reference {
        XCTAssertTrue(mattes == reference, "batch \(batch) equals batch 1")
      } else {
        reference = mattes
      }
    }
  }

  func testFlushDropsTheHeldFrameAndStartsAfresh() throws {
    let clip = try TemporalClip.make("move2", frames: 12)
    let settings = soft + lookahead + [("batch-size", "4")]
    let fresh = runClip(clip, settings, range: 6..<12).mattes
    let harness = matteHarness(for: clip, settings)
    for index in 0..<6 { harness.push(clip.buffer(index)) }
    let beforeFlush = harness.pullAvailable()
    XCTAssertEqual(beforeFlush.count, 3, "one batch of 4 went through, its last frame held")
    beforeFlush.forEach { gst_buffer_unref($0) }
    XCTAssertTrue(harness.pushEvent(gst_event_new_flush_start()))
    XCTAssertTrue(harness.pushEvent(gst_event_new_flush_stop(1)))
    var segment = GstSegment()
    gst_segment_init(&segment, GST_FORMAT_TIME)
    XCTAssertTrue(harness.pushEvent(gst_event_new_segment(&segment)))
    XCTAssertEqual(harness.pullAvailable().count, 0, "the held frame is dropped at the flush, not pushed")
    for index in 6..<12 { harness.push(clip.buffer(index)) }
    XCTAssertTrue(harness.pushEvent(gst_event_new_eos()))
    let afterFlush = harness.pullAvailable()
    XCTAssertEqual(afterFlush.map { $0.pointee.pts }, (6..<12).map { UInt($0) * TemporalClip.frameDuration })
    XCTAssertTrue(afterFlush.map { clip.matte($0) } == fresh, "after a flush the output equals a fresh stream")
    afterFlush.forEach { gst_buffer_unref($0) }

    // A DISCONT buffer drains the held frame first, then starts afresh.
    let discont = matteHarness(for: clip, settings)
    for index in 0..<12 { discont.push(clip.buffer(index, discont: index == 6)) }
    XCTAssertTrue(discont.pushEvent(gst_event_new_eos()))
    let outputs = discont.pullAvailable()
    let mattes = outputs.map { clip.matte($0) }
    XCTAssertEqual(outputs.map { $0.pointee.pts }, (0..<12).map { UInt($0) * TemporalClip.frameDuration })
    outputs.forEach { gst_buffer_unref($0) }
    XCTAssertTrue(Array(mattes[6...]) == fresh, "after a DISCONT buffer the output equals a fresh stream")
    XCTAssertTrue(mattes[5] == runClip(clip, settings, range: 0..<6).mattes[5],
                  "the frame before the DISCONT was drained without a successor")
  }

  func testLatencyAddsOneFrame() throws {
    let clip = try TemporalClip.make("static", frames: 2)
    for (extra, expected) in [([(String, String)](), UInt(125_000_000)), (lookahead, UInt(165_000_000))] {
      let harness = matteHarness(for: clip, extra + [("batch-size", "4")])
      gst_harness_set_upstream_latency(harness.harness, 5_000_000)
      // 25 fps, batch 4: 3 frames of waiting (120 ms) and upstream's 5 ms; look-ahead: 40 ms more.
      XCTAssertEqual(gst_harness_query_latency(harness.harness), expected, "\(extra)")
    }
  }

  func testStaticClipIsNoLessSteadyWithLookahead() throws {
    let clip = try TemporalClip.make("static")
    for (mode, extra) in [("soft", soft), ("binary", [])] {
      let without = runClip(clip, extra).mattes
      let with = runClip(clip, extra + lookahead).mattes
      let flickerWithout = MatteMetrics.staticFlicker(without, truth: clip.alpha)
      let flickerWith = MatteMetrics.staticFlicker(with, truth: clip.alpha)
      let madWithout = MatteMetrics.mad(without, truth: clip.alpha), madWith = MatteMetrics.mad(with, truth: clip.alpha)
      report("static \(mode)", [("flicker-without", flickerWithout), ("flicker-with", flickerWith),
                                ("mad-without", madWithout), ("mad-with", madWith)])
      XCTAssertLessThanOrEqual(flickerWith, flickerWithout, "\(mode): static flicker no worse")
      XCTAssertLessThanOrEqual(madWith, madWithout, "\(mode): MAD no worse")
    }
  }

  func testFastMotionIsNoWorseWithLookahead() throws {
    let clip = try TemporalClip.make("move6")
    let without = runClip(clip, soft).mattes
    let with = runClip(clip, soft + lookahead).mattes
    let madWithout = MatteMetrics.mad(without, truth: clip.alpha), madWith = MatteMetrics.mad(with, truth: clip.alpha)
    let dtWithout = MatteMetrics.dtSSD(without, truth: clip.alpha), dtWith = MatteMetrics.dtSSD(with, truth: clip.alpha)
    report("move6", [("mad-without", madWithout), ("mad-with", madWith), ("dtssd-without", dtWithout), ("dtssd-with", dtWith)])
    XCTAssertLessThanOrEqual(madWith, madWithout, "MAD no worse than without look-ahead")
    XCTAssertLessThanOrEqual(dtWith, dtWithout, "dtSSD no worse than without look-ahead")
  }
}
