// Every input format, at an odd size (chroma planes of partial blocks, padded strides), gives
// the same matte: a videoconvert in front of the element turns the RGBA test picture into each.
import CBackdropShim
import CGStreamer
import CGStreamerCheck
import XCTest

final class InputFormatTests: XCTestCase {
  func testEveryInputFormatAtAnOddSize() throws {
    _ = TestEnvironment.initialised
    var picture = TestPicture()
    picture.width = 67
    picture.height = 45
    picture.subject = (x: 20, y: 11, width: 27, height: 21)
    for format in ["I420", "NV12", "RGBA", "BGRA", "RGBx", "BGRx", "RGB", "BGR"] {
      let description = "videoconvert ! video/x-raw,format=\(format) ! birefnetmatte model-file=\(TestEnvironment.designedModel("lumakey")) "
        + "device=cpu batch-size=1 inference-width=96 inference-height=64"
      let harness = gst_harness_new_parse(description)!
      defer { gst_harness_teardown(harness) }
      gst_harness_set_sink_caps_str(harness, "video/x-raw,format=GRAY8")
      gst_harness_set_src_caps_str(harness, picture.capsString)
      XCTAssertEqual(gst_harness_push(harness, picture.buffer(pts: 0)), GST_FLOW_OK, format)
      let output = try XCTUnwrap(gst_harness_pull(harness), format)
      defer { gst_buffer_unref(output) }
      let caps = gst_pad_get_current_caps(harness.pointee.sinkpad)!
      defer { gst_caps_unref(caps) }
      let frame = DecodedFrame(buffer: output, caps: caps)
      XCTAssertEqual([Int(frame.info.width), Int(frame.info.height)], [67, 45], format)
      for (x, y) in picture.subjectPoints { XCTAssertEqual(frame.components(x, y), [255], "\(format) subject at \(x),\(y)") }
      for (x, y) in picture.backgroundPoints { XCTAssertEqual(frame.components(x, y), [0], "\(format) background at \(x),\(y)") }
    }
  }

  func testModelDescriptionOnceStarted() throws {
    let harness = MatteHarness(properties: [("batch-size", "1")], inputCaps: TestPicture().capsString)
    var value = GValue()
    g_value_init(&value, 64)  // G_TYPE_STRING
    defer { g_value_unset(&value) }
    g_object_get_property(UnsafeMutableRawPointer(harness.element).assumingMemoryBound(to: GObject.self), "model-description", &value)
    let description = String(cString: g_value_get_string(&value))
    XCTAssertTrue(description.contains("TorchScript") && description.contains("lumakey.pt") && description.contains("cpu")
                  && description.contains("fp32"), description)
  }

  /// Interlaced frames are passed through as they are (gst-launch users may want that), keeping
  /// their interlacing and field order in the output caps, with one WARNING per stream that names
  /// the element to put in front.
  func testInterlacedInputKeepsItsFieldOrderAndIsWarnedOnce() throws {
    let caps = "video/x-raw,format=I420,width=64,height=48,framerate=25/1,interlace-mode=interleaved,field-order=bottom-field-first"
    let run = runPipeline(
      "videotestsrc num-buffers=4 ! \(caps) ! birefnetmatte model-file=\(TestEnvironment.designedModel("lumakey")) "
        + "device=cpu batch-size=2 inference-width=64 inference-height=64 background=green ! video/x-raw,format=I420 "
        + "! identity name=out ! fakesink")
    XCTAssertEqual(run.errors, [])
    XCTAssertTrue(run.reachedEOS)
    XCTAssertEqual(run.warnings.filter { $0.contains("interlaced") },
                   ["birefnetmatte got interlaced video (interlace-mode interleaved): the model sees both fields woven together, "
                      + "so moving edges comb in the matte. Put deinterlace method=greedyl fields=top before birefnetmatte."])
    XCTAssertEqual(run.warnings.count, 1, "\(run.warnings)")
    // mixed: only frames flagged interlaced are woven, and the warning says so.
    let mixed = runPipeline(
      "videotestsrc num-buffers=2 ! \(caps.replacingOccurrences(of: "interleaved", with: "mixed")) ! birefnetmatte "
        + "model-file=\(TestEnvironment.designedModel("lumakey")) device=cpu batch-size=1 inference-width=64 inference-height=64 "
        + "background=green ! fakesink")
    XCTAssertEqual(mixed.errors, [])
    XCTAssertEqual(mixed.warnings.filter { $0.contains("interlace") }.count, 1, "\(mixed.warnings)")
    XCTAssertTrue(mixed.warnings.contains { $0.contains("got video that may be interlaced (interlace-mode mixed): in frames flagged interlaced") },
                  "\(mixed.warnings)")

    let harness = gst_harness_new_parse(
      "birefnetmatte model-file=\(TestEnvironment.designedModel("lumakey")) device=cpu batch-size=1 inference-width=64 inference-height=64")!
    defer { gst_harness_teardown(harness) }
    gst_harness_set_sink_caps_str(harness, "video/x-raw,format=GRAY8")
    gst_harness_set_src_caps_str(harness, caps.replacingOccurrences(of: "format=I420", with: "format=RGBA"))
    var picture = TestPicture()
    picture.width = 64
    picture.height = 48
    XCTAssertEqual(gst_harness_push(harness, picture.buffer(pts: 0)), GST_FLOW_OK)
    let output = try XCTUnwrap(gst_harness_pull(harness))
    gst_buffer_unref(output)
    let negotiated = gst_pad_get_current_caps(harness.pointee.sinkpad)!
    defer { gst_caps_unref(negotiated) }
    let text = String(cString: gst_caps_to_string(negotiated))
    XCTAssertTrue(text.contains("interlace-mode=(string)interleaved") && text.contains("field-order=(string)bottom-field-first"), text)
  }
}
