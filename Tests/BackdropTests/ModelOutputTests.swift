// model-output: a TorchScript model that ends with its own sigmoid returns probabilities, not the
// logits of the contract. Read as logits every pixel is unsure foreground (p 0.50-0.73), so the
// element warns once per stream and model-output=probability reads such a model as it is meant.
// probkey.pt returns softkey.pt's probability itself, so the two must give the same matte.
import CGStreamer
import XCTest

final class ModelOutputTests: XCTestCase {
  private func run(_ properties: [(String, String)], frames: Int = 4) -> (alphas: [[Int?]], warnings: [String], errors: [String]) {
    let picture = TestPicture()
    let harness = MatteHarness(properties: properties + [("batch-size", "2")], inputCaps: picture.capsString,
                               outputCaps: "video/x-raw,format=RGBA")
    for i in 0..<frames { XCTAssertEqual(harness.push(picture.buffer(pts: UInt(i) * 40_000_000)), GST_FLOW_OK) }
    let outputs = harness.pullAvailable()
    XCTAssertEqual(outputs.count, frames)
    let alphas = outputs.map { buffer -> [Int?] in
      defer { gst_buffer_unref(buffer) }
      let frame = harness.decode(buffer)
      return (0..<picture.height).flatMap { y in (0..<picture.width).map { x in frame.alpha(x, y) } }
    }
    return (alphas, harness.messages.texts(GST_MESSAGE_WARNING), harness.messages.texts(GST_MESSAGE_ERROR))
  }

  func testProbabilitiesReadAsLogitsAreWarnedOncePerStream() {
    let model = TestEnvironment.designedModel("probkey")
    let result = run([("model-file", model)])
    // The degenerate matte a user would see: the dark background is kept too.
    let picture = TestPicture()
    for (x, y) in picture.subjectPoints + picture.backgroundPoints {
      XCTAssertEqual(result.alphas[0][y * picture.width + x], 255, "alpha at (\(x),\(y))")
    }
    XCTAssertEqual(result.warnings.count, 1, "\(result.warnings)")
    let text = result.warnings.first ?? ""
    for part in [model, "returned values between 0 and 1 only, in all 2 frame(s) so far", "model-output=logits",
                 "every pixel is unsure foreground", "set model-output=probability"] {
      XCTAssertTrue(text.contains(part), "\"\(text)\" should mention \"\(part)\"")
    }
    XCTAssertEqual(result.errors, [])
  }

  func testModelOutputProbabilityGivesTheModelsOwnMatte() {
    for mode in ["soft", "binary"] {
      let probabilities = run([("model-file", TestEnvironment.designedModel("probkey")), ("model-output", "probability"),
                               ("matte-mode", mode)])
      let logits = run([("model-file", TestEnvironment.designedModel("softkey")), ("matte-mode", mode)])
      XCTAssertEqual(probabilities.warnings, [], mode)
      XCTAssertEqual(probabilities.errors, [], mode)
      XCTAssertEqual(logits.warnings, [], "softkey returns logits: \(mode)")
      let picture = TestPicture()
      for (x, y) in picture.backgroundPoints {
        XCTAssertEqual(probabilities.alphas[0][y * picture.width + x], 0, "\(mode): background at (\(x),\(y))")
      }
      for (x, y) in picture.subjectPoints {
        XCTAssertEqual(probabilities.alphas[0][y * picture.width + x], 255, "\(mode): subject at (\(x),\(y))")
      }
      // sigmoid(logit(p)) against p itself: at most one step of rounding apart, at every pixel.
      for (frame, (a, b)) in zip(probabilities.alphas, logits.alphas).enumerated() {
        let worst = zip(a, b).map { abs(($0 ?? -99) - ($1 ?? 99)) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, 1, "\(mode): frame \(frame) differs from softkey's matte by \(worst)")
      }
    }
  }

  func testALogitsModelGetsNoWarningAndTheDefaultIsLogits() throws {
    let result = run([("model-file", TestEnvironment.designedModel("lumakey"))])
    XCTAssertEqual(result.warnings, [])
    let element = try XCTUnwrap(gst_element_factory_make("birefnetmatte", nil))
    defer { gst_object_unref(element) }
    let spec = try XCTUnwrap(g_object_class_find_property(UnsafeMutablePointer(mutating: element.pointee.object.object.g_type_instance.g_class)
      .withMemoryRebound(to: GObjectClass.self, capacity: 1) { $0 }, "model-output"))
    let defaultValue = try XCTUnwrap(g_param_spec_get_default_value(spec))
    let enumClass = g_type_class_ref(spec.pointee.value_type)
    defer { g_type_class_unref(enumClass) }
    let value = try XCTUnwrap(g_enum_get_value(enumClass?.assumingMemoryBound(to: GEnumClass.self), g_value_get_enum(defaultValue)))
    XCTAssertEqual(String(cString: value.pointee.value_nick), "logits")
  }
}
