// Native BiRefNet vs the official implementation: every fixture case of
// Tests/Fixtures/birefnet, with bdrand weights written from the manifests, loaded through the
// public bd_model_open, compared tensor by tensor with the README's tolerances.
import CBackdropEngineABI
import Foundation
import XCTest

final class BiRefNetParityTests: XCTestCase {
  override class func tearDown() {
    Weights.remove("swin_v1_t")
    super.tearDown()
  }

  /// Runs one case and asserts every stored tensor; prints the errors observed.
  private func check(case name: String, backbone: String, patchOrder: bd_patch_order = BD_PATCH_ORDER_AUTO,
                     expectedDescription: String, weightsFile: URL? = nil) throws {
    try Paths.requireFixtures(["\(name).safetensors", "manifest_\(backbone).json"])
    let engine = try Engine.get()
    let fixture = try SafeTensorsFile(Paths.fixtures.appendingPathComponent("\(name).safetensors"))
    let weights = try weightsFile ?? Weights.manifestFile(backbone)
    let opened = engine.open(weights.path, patchOrder: patchOrder)
    XCTAssertEqual(opened.status, BD_OK, opened.message)
    guard let model = opened.model else { return }
    var info = bd_model_info()
    engine.modelGetInfo(model, &info)
    let description = withUnsafeBytes(of: &info.description) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
    XCTAssertEqual(info.kind, BD_MODEL_BIREFNET)
    XCTAssertTrue(description.contains(expectedDescription), "description: \(description)")
    defer { engine.modelRelease(model) }

    let input = try fixture.modelInput()
    let start = Date()
    let got = try engine.forward(weights.path, input: input, patchOrder: patchOrder)
    print("\(name): forward in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
    let names = fixture.entries.filter { $0.value.dtype == "F32" && $0.key != "input" && $0.key != "prob_full" }
      .keys.sorted()
    XCTAssertTrue(names.contains("logits"))
    for tensorName in names {
      let ref = try fixture.floats(tensorName)
      guard let out = got[tensorName] else {
        XCTFail("\(name): the engine did not report \(tensorName)")
        continue
      }
      XCTAssertEqual(out.shape, ref.shape, "\(name): \(tensorName) shape")
      guard out.shape == ref.shape else { continue }
      let e = relativeErrors(out, ref)
      let tol = tolerance(for: tensorName)
      print(String(format: "%@ %-28@ max-rel %.3e (tol %.0e)  rms-rel %.3e", name, tensorName, e.max, tol, e.rms))
      XCTAssertLessThanOrEqual(e.max, tol, "\(name): \(tensorName) max-rel error")
      if tensorName == "logits" { XCTAssertLessThanOrEqual(e.rms, 1e-4, "\(name): logits RMS-rel error") }
    }
  }

  func testSwinT256x256() throws {
    try check(case: "variant_a_swin_v1_t_256x256", backbone: "swin_v1_t", expectedDescription: "swin_v1_t, current patch order")
  }

  func testSwinT256x384NonSquare() throws {
    try check(case: "variant_a_swin_v1_t_256x384", backbone: "swin_v1_t", expectedDescription: "swin_v1_t")
  }

  /// The ATen paths a GPU runs (grid_sampler for the deformable convolution, ATen ops for the
  /// window attention), checked on the CPU too, which normally takes its own kernels. The switch
  /// is read when a model is built, so the weights are opened under a path of their own (a hard
  /// link): no model from the process-wide cache, built without the switch, can answer.
  func testSwinT256x384ATenPaths() throws {
    let shared = try Weights.manifestFile("swin_v1_t")
    let own = Weights.scratch.appendingPathComponent("aten_paths_swin_v1_t.safetensors")
    try? FileManager.default.removeItem(at: own)
    try FileManager.default.linkItem(at: shared, to: own)
    defer { try? FileManager.default.removeItem(at: own) }
    setenv("BD_TESTING_KERNELS", "aten", 1)
    defer { unsetenv("BD_TESTING_KERNELS") }
    try check(case: "variant_a_swin_v1_t_256x384", backbone: "swin_v1_t", expectedDescription: "swin_v1_t",
              weightsFile: own)
  }

  func testSwinTLegacyPatchOrder() throws {
    try check(case: "variant_a_swin_v1_t_256x256_patchorder-legacy", backbone: "swin_v1_t",
              patchOrder: BD_PATCH_ORDER_LEGACY, expectedDescription: "legacy patch order")
  }

  /// The legacy order also comes from the file's __metadata__ when the option is AUTO.
  func testLegacyPatchOrderFromMetadata() throws {
    try Paths.requireFixtures(["variant_a_swin_v1_t_256x256_patchorder-legacy.safetensors", "manifest_swin_v1_t.json"])
    let engine = try Engine.get()
    let url = Weights.scratch.appendingPathComponent("legacy_meta.safetensors")
    defer { try? FileManager.default.removeItem(at: url) }
    try Weights.write(try Manifest.load("swin_v1_t").map(WeightSpec.init), to: url, metadata: ["patch_order": "legacy"])
    let fixture = try SafeTensorsFile(Paths.fixtures.appendingPathComponent("variant_a_swin_v1_t_256x256_patchorder-legacy.safetensors"))
    let got = try engine.forward(url.path, input: try fixture.modelInput())
    let e = relativeErrors(got["logits"]!, try fixture.floats("logits"))
    print(String(format: "legacy order from metadata: logits max-rel %.3e", e.max))
    XCTAssertLessThanOrEqual(e.max, 1e-3)
  }

  func testSwinL256x256() throws {
    defer { Weights.remove("swin_v1_l") }
    try check(case: "variant_b_swin_v1_l_256x256", backbone: "swin_v1_l", expectedDescription: "swin_v1_l")
  }

  /// The frame case: model part through the test entry point, then the whole session pipeline
  /// (RGB 320x180 -> antialiased resize to 256x256 -> model -> sigmoid -> resize back -> GRAY8).
  func testFramePipeline() throws {
    let name = "frame_swin_v1_t_320x180"
    try check(case: name, backbone: "swin_v1_t", expectedDescription: "swin_v1_t")
    let engine = try Engine.get()
    let fixture = try SafeTensorsFile(Paths.fixtures.appendingPathComponent("\(name).safetensors"))
    let frame = try fixture.bytes("frame")  // [180, 320, 3] HWC
    let matte = try fixture.bytes("matte")  // [1, 1, 180, 320]
    let prob = try fixture.floats("prob_full")
    let (h, w) = (frame.shape[0], frame.shape[1])
    let weights = try Weights.manifestFile("swin_v1_t")
    let opened = engine.open(weights.path)
    guard let model = opened.model else { return XCTFail(opened.message) }
    defer { engine.modelRelease(model) }
    var config = bd_session_config()
    config.width = Int32(w)
    config.height = Int32(h)
    config.input_format = BD_FORMAT_RGB
    config.output_format = BD_FORMAT_GRAY8
    config.input_matrix = BD_MATRIX_BT709
    config.output_matrix = BD_MATRIX_BT709
    config.input_full_range = 1
    config.output_full_range = 1
    config.inference_width = 256
    config.inference_height = 256
    config.max_batch = 1
    var session: OpaquePointer?
    var err = [CChar](repeating: 0, count: 4096)
    let st = engine.sessionCreate(model, &config, &session, &err, err.count)
    XCTAssertEqual(st, BD_OK, String(cString: err))
    guard let session else { return }
    defer { engine.sessionDestroy(session) }
    var rgb = frame.values
    var out = [UInt8](repeating: 0, count: w * h)
    var params = bd_composite_params()
    params.threshold = 0.5
    params.soft = 1
    params.background = BD_BACKGROUND_NONE
    let status = rgb.withUnsafeMutableBufferPointer { inBuf in
      out.withUnsafeMutableBufferPointer { outBuf -> bd_status in
        var input = bd_frame()
        input.planes.0 = inBuf.baseAddress
        input.strides.0 = Int32(w * 3)
        var output = bd_frame()
        output.planes.0 = outBuf.baseAddress
        output.strides.0 = Int32(w)
        return engine.sessionProcess(session, &input, &output, 1, &params, &err, err.count)
      }
    }
    XCTAssertEqual(status, BD_OK, String(cString: err))
    var differing = 0, maxDiff = 0, maxProbErr = 0.0
    for i in 0..<(w * h) {
      let d = abs(Int(out[i]) - Int(matte.values[i]))
      maxDiff = max(maxDiff, d)
      if d != 0 { differing += 1 }
      maxProbErr = max(maxProbErr, abs(Double(out[i]) / 255 - Double(prob.values[i])))
    }
    print("\(name): matte max |diff| \(maxDiff), \(differing) of \(w * h) pixels differ; |matte/255 - prob_full| max \(String(format: "%.3e", maxProbErr))")
    XCTAssertLessThanOrEqual(maxDiff, 1, "matte differs by more than 1")
    XCTAssertLessThanOrEqual(Double(differing), 0.01 * Double(w * h), "more than 1 % of matte pixels differ")
    // The matte is prob_full rounded to 1/255: within half a step plus the README's 1e-3.
    XCTAssertLessThanOrEqual(maxProbErr, 0.5 / 255 + 1e-3)
  }
}
