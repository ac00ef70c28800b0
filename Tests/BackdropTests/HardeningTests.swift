// Faults found by hostile testing (issue 12), at the element: one ERROR per broken model, the
// output-size contract checked by the probe, NaN from a model made background and reported once.
import CBackdropShim
import CGStreamer
import CGStreamerCheck
import Foundation
import XCTest

final class HardeningTests: XCTestCase {
  /// Every ERROR and WARNING a pipeline posts (not only the first), with the element that posted
  /// it: runs until EOS, or until the bus stays quiet for `settle` seconds after the first ERROR.
  func collectMessages(_ description: String, settle: TimeInterval = 1.5, timeout: TimeInterval = 60)
    -> (errors: [(source: String, text: String)], warnings: [String], reachedEOS: Bool)
  {
    _ = TestEnvironment.initialised
    var parseError: UnsafeMutablePointer<GError>?
    guard let pipeline = gst_parse_launch(description, &parseError), parseError == nil else {
      XCTFail("cannot parse \(description)")
      return ([], [], false)
    }
    defer {
      gst_element_set_state(pipeline, GST_STATE_NULL)
      gst_object_unref(pipeline)
    }
    let bus = gst_element_get_bus(pipeline)!
    defer { gst_object_unref(bus) }
    gst_element_set_state(pipeline, GST_STATE_PLAYING)
    var errors: [(String, String)] = []
    var warnings: [String] = []
    let types = GstMessageType(rawValue: GST_MESSAGE_ERROR.rawValue | GST_MESSAGE_WARNING.rawValue | GST_MESSAGE_EOS.rawValue)
    let deadline = Date().addingTimeInterval(timeout)
    var quietUntil: Date?
    while Date() < deadline {
      if let quietUntil, Date() > quietUntil { break }
      guard let message = gst_bus_timed_pop_filtered(bus, 100_000_000, types) else { continue }
      defer { gst_message_unref(message) }
      switch message.pointee.type {
      case GST_MESSAGE_EOS: return (errors, warnings, true)
      case GST_MESSAGE_ERROR:
        var source = "?"
        if let src = message.pointee.src, let name = gst_object_get_name(src) {
          source = String(cString: name)
          g_free(name)
        }
        errors.append((source, messageText(message)))
        quietUntil = Date().addingTimeInterval(settle)
      default: warnings.append(messageText(message))
      }
    }
    return (errors, warnings, false)
  }

  /// Fault 3: a model that breaks the output contract posted the same ERROR 7 times for a
  /// 4-frame stream (upstream re-sends its sticky caps with every buffer and at EOS).
  func testContractBreakPostsOneErrorAndStopsTheStream() {
    let model = TestEnvironment.designedModel("wrong_output")
    let run = collectMessages(
      "videotestsrc num-buffers=4 ! video/x-raw,width=64,height=48 ! birefnetmatte name=matte device=cpu "
        + "inference-width=64 inference-height=64 model-file=\(model) ! fakesink")
    XCTAssertFalse(run.reachedEOS, "the stream must stop")
    let fromMatte = run.errors.filter { $0.source == "matte" }
    XCTAssertEqual(fromMatte.count, 1, "ERRORs from the element: \(fromMatte.map(\.text))")
    XCTAssertTrue(fromMatte.first?.text.contains(model) ?? false, "\(fromMatte)")
    XCTAssertTrue(fromMatte.first?.text.contains("logits [B,1,H,W]") ?? false, "\(fromMatte)")
    // Besides it, at most the source's own "streaming stopped" error (GStreamer's convention).
    XCTAssertLessThanOrEqual(run.errors.count, 2, "\(run.errors)")
  }

  /// Fault 4: logits at half the input size were silently upsampled. The contract (README) is
  /// logits at the input's size; the probe forward at start refuses anything else, naming both.
  func testHalfSizeLogitsAreRefusedAtTheProbe() {
    let model = TestEnvironment.designedModel("half_size")
    let run = collectMessages(
      "videotestsrc num-buffers=2 ! video/x-raw,width=64,height=48 ! birefnetmatte name=matte device=cpu "
        + "inference-width=64 inference-height=64 model-file=\(model) ! fakesink", settle: 0.5)
    XCTAssertFalse(run.reachedEOS, "a half-size model must not run")
    let text = run.errors.first { $0.source == "matte" }?.text ?? "(no error from the element)"
    for part in [model, "32x32", "64x64", "at the input's size"] {
      XCTAssertTrue(text.contains(part), "\"\(text)\" should mention \"\(part)\"")
    }
  }

  /// The same model, fixed to the contract, still runs: the check is about size, nothing else.
  func testFullSizeLogitsStillRun() {
    let run = collectMessages(
      "videotestsrc num-buffers=2 ! video/x-raw,width=64,height=48 ! birefnetmatte device=cpu "
        + "inference-width=64 inference-height=64 model-file=\(TestEnvironment.designedModel("lumakey")) ! fakesink")
    XCTAssertTrue(run.reachedEOS, "\(run.errors)")
  }

  /// Fault 9: NaN from a model gave a transparent matte and no word. nan_bright.pt outputs NaN at
  /// every bright pixel: the 32x24 subject (768 pixels a frame at 64x64, no resize). They must come
  /// out as background, and ONE WARNING per stream must name the model and count them.
  func testNaNIsBackgroundAndReportedOncePerStream() throws {
    var picture = TestPicture()
    picture.width = 64
    picture.height = 64
    let model = TestEnvironment.designedModel("nan_bright")
    for mode in ["binary", "soft"] {
      let harness = MatteHarness(
        properties: [("model-file", model), ("batch-size", "3"), ("matte-mode", mode)],
        inputCaps: picture.capsString, outputCaps: "video/x-raw,format=RGBA")
      for i in 0..<6 { XCTAssertEqual(harness.push(picture.buffer(pts: UInt(i) * 40_000_000)), GST_FLOW_OK) }
      let outputs = harness.pullAvailable()
      XCTAssertEqual(outputs.count, 6, mode)
      for buffer in outputs {
        let frame = harness.decode(buffer)
        for (x, y) in picture.subjectPoints + picture.backgroundPoints {
          XCTAssertEqual(frame.alpha(x, y), 0, "\(mode): alpha at (\(x),\(y)) of a NaN/dark pixel")
        }
        gst_buffer_unref(buffer)
      }
      let warnings = harness.messages.texts(GST_MESSAGE_WARNING)
      XCTAssertEqual(warnings.count, 1, "\(mode): one warning per stream, got \(warnings)")
      let text = warnings.first ?? ""
      for part in [model, "NaN", "2304 pixel(s) in 3 of 3 frame(s)", "background"] {
        XCTAssertTrue(text.contains(part), "\(mode): \"\(text)\" should mention \"\(part)\"")
      }
      XCTAssertEqual(harness.messages.texts(GST_MESSAGE_ERROR), [], mode)
    }
  }

  /// A model without NaN gets no such warning.
  func testNoNaNNoWarning() {
    var picture = TestPicture()
    picture.height = 64
    let harness = MatteHarness(properties: [("batch-size", "2")], inputCaps: picture.capsString)
    for i in 0..<4 { harness.push(picture.buffer(pts: UInt(i) * 40_000_000)) }
    let outputs = harness.pullAvailable()
    XCTAssertEqual(outputs.count, 4)
    XCTAssertEqual(harness.decode(outputs[0]).alpha(32, 24), 255)
    outputs.forEach { gst_buffer_unref($0) }
    XCTAssertEqual(harness.messages.texts(GST_MESSAGE_WARNING), [])
  }
}
