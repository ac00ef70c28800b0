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
}
