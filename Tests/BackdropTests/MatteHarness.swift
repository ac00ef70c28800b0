// A GstHarness around one birefnetmatte element with the designed luma-key model.
import CBackdropShim
import CGStreamer
import CGStreamerCheck
import XCTest

final class MatteHarness {
  let harness: UnsafeMutablePointer<GstHarness>
  let element: UnsafeMutablePointer<GstElement>
  let messages: MessageCollector

  /// `properties` are applied after the defaults (luma-key model, CPU, no live batch timeout, no
  /// inference thread: the tests read the output right after a push, which the thread would make
  /// a race; InferenceQueueTests covers it with blocking pulls and sync points).
  init(properties: [(String, String)] = [], inputCaps: String, outputCaps: String? = nil) {
    _ = TestEnvironment.initialised
    element = gst_element_factory_make("birefnetmatte", nil)!
    let defaults = [("model-file", TestEnvironment.designedModel("lumakey")), ("device", "cpu"),
                    ("batch-timeout", "0"), ("inference-width", "64"), ("inference-height", "64"),
                    ("inference-queue", "0")]
    for (name, value) in defaults + properties { setProperty(element, name, value) }
    messages = MessageCollector(element: element)
    harness = gst_harness_new_with_element(element, "sink", "src")
    if let outputCaps { gst_harness_set_sink_caps_str(harness, outputCaps) }
    gst_harness_play(harness)
    gst_harness_set_src_caps_str(harness, inputCaps)
  }

  deinit { gst_harness_teardown(harness) }

  @discardableResult
  func push(_ buffer: UnsafeMutablePointer<GstBuffer>) -> GstFlowReturn { gst_harness_push(harness, buffer) }

  func pushEvent(_ event: UnsafeMutablePointer<GstEvent>) -> Bool { gst_harness_push_event(harness, event) != 0 }

  /// Every buffer the element has pushed so far, in order.
  func pullAvailable() -> [UnsafeMutablePointer<GstBuffer>] {
    var buffers: [UnsafeMutablePointer<GstBuffer>] = []
    while let buffer = gst_harness_try_pull(harness) { buffers.append(buffer) }
    return buffers
  }

  var outputCaps: UnsafeMutablePointer<GstCaps> { gst_pad_get_current_caps(harness.pointee.sinkpad)! }

  func decode(_ buffer: UnsafeMutablePointer<GstBuffer>) -> DecodedFrame {
    let caps = outputCaps
    defer { gst_caps_unref(caps) }
    return DecodedFrame(buffer: buffer, caps: caps)
  }

  /// The next `count` buffers the element pushes, waiting for each (as the inference thread
  /// pushes them); fewer if it pushes nothing for the harness's timeout (60 s).
  func pull(_ count: Int) -> [UnsafeMutablePointer<GstBuffer>] {
    var buffers: [UnsafeMutablePointer<GstBuffer>] = []
    while buffers.count < count, let buffer = gst_harness_pull(harness) { buffers.append(buffer) }
    return buffers
  }

  /// Pushes `picture` once and returns the decoded output (batch-size must be 1).
  func process(_ picture: TestPicture, file: StaticString = #filePath, line: UInt = #line) -> DecodedFrame? {
    XCTAssertEqual(push(picture.buffer(pts: 0)), GST_FLOW_OK, file: file, line: line)
    guard let output = pullAvailable().first else {
      XCTFail("no output frame; errors: \(messages.texts(GST_MESSAGE_ERROR))", file: file, line: line)
      return nil
    }
    defer { gst_buffer_unref(output) }
    return decode(output)
  }
}
