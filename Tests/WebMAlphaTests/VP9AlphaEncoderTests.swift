// vp9alphaenc on its own, through GstHarness: output caps, one alpha meta per frame, keyframes
// at the same frames on both streams, forced key units, drain at EOS.
import CBackdropShim
import CGStreamer
import CGStreamerCheck
import XCTest

final class VP9AlphaEncoderTests: XCTestCase {
  override class func setUp() {
    super.setUp()
    XCTAssertTrue(WebMTestEnvironment.ready, "the backdrop plugin did not register vp9alphaenc")
  }

  private func makeBuffer(_ pattern: AlphaPattern, _ t: Int) -> UnsafeMutablePointer<GstBuffer> {
    let bytes = pattern.frame(t)
    let buffer = bytes.withUnsafeBytes { gst_buffer_new_memdup($0.baseAddress, UInt($0.count)) }!
    buffer.pointee.pts = UInt(t) * 1_000_000_000 / UInt(pattern.fps)
    buffer.pointee.duration = 1_000_000_000 / UInt(pattern.fps)
    return buffer
  }

  /// Keyframe flags of the colour frame and of the alpha frame (VP9 uncompressed header:
  /// frame_marker 2 bits, profile bits, show_existing_frame, frame_type 0 = key).
  private func isVP9Keyframe(_ data: [UInt8]) -> Bool {
    guard let first = data.first else { return false }
    // profile 0: bits 7-6 frame marker (10), bit 5 profile_low, bit 4 profile_high,
    // bit 3 show_existing_frame, bit 2 frame_type.
    return first & 0x08 == 0 && first & 0x04 == 0
  }

  private func bytes(of buffer: UnsafeMutablePointer<GstBuffer>) -> [UInt8] {
    let size = gst_buffer_get_size(buffer)
    var out = [UInt8](repeating: 0, count: Int(size))
    _ = out.withUnsafeMutableBytes { gst_buffer_extract(buffer, 0, $0.baseAddress, size) }
    return out
  }

  func testEncodesPairsWithAlignedKeyframesAndForcedKeyUnits() throws {
    let pattern = AlphaPattern(width: 160, height: 120, frames: 30)
    let harness = gst_harness_new("vp9alphaenc")!
    defer { gst_harness_teardown(harness) }
    bd_object_set_int(harness.pointee.element, "keyframe-max-dist", 10)
    gst_harness_set_src_caps_str(
      harness, "video/x-raw,format=A420,width=160,height=120,framerate=30/1")
    var keyframes: [Int] = []
    var alphaKeyframes: [Int] = []
    for t in 0..<pattern.frames {
      if t == 14 {
        let event = gst_video_event_new_downstream_force_key_unit(
          UInt(t) * 1_000_000_000 / 30, UInt.max, UInt.max, 1, 1)
        XCTAssertEqual(gst_harness_push_event(harness, event), 1)
      }
      XCTAssertEqual(gst_harness_push(harness, makeBuffer(pattern, t)), GST_FLOW_OK)
    }
    XCTAssertEqual(gst_harness_push_event(harness, gst_event_new_eos()), 1)
    XCTAssertEqual(gst_harness_buffers_received(harness), UInt32(pattern.frames))

    let caps = gst_pad_get_current_caps(harness.pointee.sinkpad)!
    defer { gst_caps_unref(caps) }
    let structure = gst_caps_get_structure(caps, 0)!
    XCTAssertEqual(String(cString: gst_structure_get_name(structure)), "video/x-vp9")
    XCTAssertEqual(gst_structure_get_string(structure, "alignment").map { String(cString: $0) }, "super-frame")
    var codecAlpha: gboolean = 0
    XCTAssertEqual(gst_structure_get_boolean(structure, "codec-alpha", &codecAlpha), 1)
    XCTAssertEqual(codecAlpha, 1)
    var width: Int32 = 0
    gst_structure_get_int(structure, "width", &width)
    XCTAssertEqual(width, 160)

    for t in 0..<pattern.frames {
      let buffer = gst_harness_pull(harness)!
      defer { gst_buffer_unref(buffer) }
      XCTAssertEqual(buffer.pointee.pts, UInt(t) * 1_000_000_000 / 30, "frame \(t) pts")
      let meta = gst_buffer_get_meta(buffer, gst_video_codec_alpha_meta_api_get_type())
      XCTAssertNotNil(meta, "frame \(t) has no GstVideoCodecAlphaMeta")
      guard let meta else { continue }
      let alphaMeta = UnsafeMutableRawPointer(meta).assumingMemoryBound(to: GstVideoCodecAlphaMeta.self)
      let alpha = alphaMeta.pointee.buffer!
      let colourKey = buffer.pointee.mini_object.flags & GST_BUFFER_FLAG_DELTA_UNIT.rawValue == 0
      XCTAssertEqual(isVP9Keyframe(bytes(of: buffer)), colourKey, "frame \(t): flag vs bitstream")
      if colourKey { keyframes.append(t) }
      if isVP9Keyframe(bytes(of: alpha)) { alphaKeyframes.append(t) }
    }
    // keyframe-max-dist 10 from frame 0, a forced key unit at 14 restarts the count.
    XCTAssertEqual(keyframes, [0, 10, 14, 24])
    XCTAssertEqual(alphaKeyframes, keyframes, "alpha keyframes must coincide with colour keyframes")
  }

  func testRejectsNonA420Caps() {
    let harness = gst_harness_new("vp9alphaenc")!
    defer { gst_harness_teardown(harness) }
    let caps = gst_caps_from_string("video/x-raw,format=I420,width=64,height=64,framerate=30/1")!
    let sinkCaps = gst_pad_query_caps(harness.pointee.srcpad.pointee.peer, nil)!
    defer { gst_caps_unref(sinkCaps); gst_caps_unref(caps) }
    XCTAssertEqual(gst_caps_can_intersect(caps, sinkCaps), 0, "I420 must not be accepted, only A420")
  }

  /// RGBA and BGRA input (converted inside the encoder), straight into vp9alphadecodebin (no
  /// muxer): alpha at the check points and colour where the source is opaque or half transparent.
  func testRGBAAndBGRAInputRoundTripThroughVP9AlphaDecodebin() throws {
    let pattern = AlphaPattern(width: 320, height: 240, frames: 20)
    let dir = try WebMTestEnvironment.temporaryDirectory("rgba")
    defer { try? FileManager.default.removeItem(at: dir) }
    let raw = dir.appendingPathComponent("pattern.a420").path
    try pattern.write(to: URL(fileURLWithPath: raw))
    let reference = dir.appendingPathComponent("reference.rgba").path
    XCTAssertNil(runPipeline("\(pattern.rawVideoSource(raw)) ! videoconvert ! video/x-raw,format=RGBA ! filesink location=\(reference)").error)
    let expected = try Data(contentsOf: URL(fileURLWithPath: reference))
    for format in ["RGBA", "BGRA"] {
      let out = dir.appendingPathComponent("decoded-\(format).rgba").path
      let outcome = runPipeline(
        "\(pattern.rawVideoSource(raw)) ! videoconvert ! video/x-raw,format=\(format) ! vp9alphaenc "
          + "! vp9alphadecodebin ! videoconvert ! video/x-raw,format=RGBA ! filesink location=\(out)")
      XCTAssertNil(outcome.error, "\(format): \(outcome.error ?? "")")
      let decoded = try Data(contentsOf: URL(fileURLWithPath: out))
      assertAlphaMatches(decoded, pattern, frames: 20, maxMeanError: 1.0, "\(format) input")
      // Colour: within ±16 per channel inside the opaque square and the half-transparent rectangle.
      var worst = 0
      for t in 0..<20 {
        let (sx, sy) = pattern.squareOrigin(t)
        let r = pattern.halfRect
        for (x, y) in [(sx + 32, sy + 32), (sx + 12, sy + 40), (r.x + 48, r.y + 32)] {
          let offset = (t * pattern.width * pattern.height + y * pattern.width + x) * 4
          for c in 0..<3 { worst = max(worst, abs(Int(decoded[offset + c]) - Int(expected[offset + c]))) }
        }
      }
      XCTAssertLessThanOrEqual(worst, 16, "\(format): colour error where the source is visible")
      print("\(format) input: worst colour error \(worst)")
    }
  }

  /// Look-ahead holds frames back; EOS drains both encoders so that every frame comes out with
  /// its alpha. Odd sizes (161x121) exercise the half-size chroma and partial 16x16 blocks.
  func testLagInFramesIsDrainedAtEOSWithOddSize() throws {
    let dir = try WebMTestEnvironment.temporaryDirectory("lag")
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("decoded.rgba").path
    let outcome = runPipeline(
      "videotestsrc num-buffers=30 pattern=ball background-color=0x00000000 ! video/x-raw,format=AYUV,width=161,height=121,framerate=30/1 "
        + "! videoconvert ! video/x-raw,format=A420 ! vp9alphaenc lag-in-frames=8 deadline=1000000 cpu-used=4 "
        + "! vp9alphadecodebin ! videoconvert ! video/x-raw,format=RGBA ! filesink location=\(out)")
    XCTAssertNil(outcome.error, outcome.error ?? "")
    let decoded = try Data(contentsOf: URL(fileURLWithPath: out))
    XCTAssertEqual(decoded.count, 161 * 121 * 4 * 30, "30 decoded frames of 161x121")
    // The ball is opaque, the background transparent, in the last (drained) frame too.
    let last = [UInt8](decoded.suffix(161 * 121 * 4))
    let alphas = stride(from: 3, to: last.count, by: 4).map { last[$0] }
    XCTAssertGreaterThan(alphas.filter { $0 <= 3 }.count, 161 * 121 * 8 / 10, "transparent background")
    XCTAssertGreaterThan(alphas.filter { $0 >= 250 }.count, 50, "opaque ball")
  }

  func testLagInFramesHoldsFramesUntilEOS() {
    let pattern = AlphaPattern(width: 64, height: 48, frames: 20)
    let harness = gst_harness_new("vp9alphaenc")!
    defer { gst_harness_teardown(harness) }
    bd_object_set_int(harness.pointee.element, "lag-in-frames", 8)
    gst_util_set_object_arg(UnsafeMutableRawPointer(harness.pointee.element).assumingMemoryBound(to: GObject.self), "deadline", "1000000")
    gst_harness_set_src_caps_str(harness, "video/x-raw,format=A420,width=64,height=48,framerate=30/1")
    for t in 0..<pattern.frames { XCTAssertEqual(gst_harness_push(harness, makeBuffer(pattern, t)), GST_FLOW_OK) }
    XCTAssertLessThan(gst_harness_buffers_received(harness), UInt32(pattern.frames), "frames held by look-ahead")
    XCTAssertEqual(gst_harness_push_event(harness, gst_event_new_eos()), 1)
    XCTAssertEqual(gst_harness_buffers_received(harness), UInt32(pattern.frames), "all frames after EOS")
    for t in 0..<pattern.frames {
      let buffer = gst_harness_pull(harness)!
      XCTAssertEqual(buffer.pointee.pts, UInt(t) * 1_000_000_000 / 30)
      XCTAssertNotNil(gst_buffer_get_meta(buffer, gst_video_codec_alpha_meta_api_get_type()), "frame \(t) alpha meta")
      gst_buffer_unref(buffer)
    }
  }

  func testInvalidSettingsGiveAClearBusError() {
    let outcome = runPipeline(
      "videotestsrc num-buffers=3 ! video/x-raw,format=A420,width=64,height=64 ! vp9alphaenc min-quantizer=40 max-quantizer=10 ! fakesink",
      timeoutSeconds: 20)
    XCTAssertEqual(
      outcome.error,
      "cannot open the colour VP9 encoder (64x64): Invalid parameter rc_min_quantizer out of range [..cfg->rc_max_quantizer]")
  }
}
