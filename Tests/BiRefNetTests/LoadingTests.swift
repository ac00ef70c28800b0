// Loading official-format weights: exact manifest keys, prefixes, training-only keys, F16/BF16,
// and the errors a user gets for missing, unexpected, wrongly shaped or typed keys, truncated and
// hostile files. Every error must come back as BD_ERR_MODEL with text naming the key and rule.
import CBackdropEngineABI
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class BiRefNetLoadingTests: XCTestCase {
  private var files = [URL]()

  override func tearDown() {
    for f in files { try? FileManager.default.removeItem(at: f) }
    files.removeAll()
    super.tearDown()
  }

  private func scratch(_ name: String) -> URL {
    let u = Weights.scratch.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8)).safetensors")
    files.append(u)
    return u
  }

  private func manifest() throws -> [ManifestKey] {
    try Paths.requireFixtures(["manifest_swin_v1_t.json"])
    return try Manifest.load("swin_v1_t")
  }

  /// Writes the given specs (zeros are enough for error cases), opens, returns status and message.
  private func open(_ specs: [WeightSpec], name: String, zeros: Bool = true) throws -> (bd_status, String) {
    let engine = try Engine.get()
    let url = scratch(name)
    try Weights.write(specs.map { var s = $0; s.zeros = zeros; return s }, to: url)
    let r = engine.open(url.path)
    if let m = r.model { engine.modelRelease(m) }
    print("\(name): status \(r.status.rawValue): \(r.message.prefix(600))")
    return (r.status, r.message)
  }

  private func openRaw(_ bytes: [UInt8], name: String) throws -> (bd_status, String) {
    let engine = try Engine.get()
    let url = scratch(name)
    try Data(bytes).write(to: url)
    let r = engine.open(url.path)
    if let m = r.model { engine.modelRelease(m) }
    print("\(name): status \(r.status.rawValue): \(r.message.prefix(600))")
    return (r.status, r.message)
  }

  private func assertModelError(_ r: (bd_status, String), contains parts: [String], file: StaticString = #filePath,
                                line: UInt = #line) {
    XCTAssertEqual(r.0, BD_ERR_MODEL, "status for: \(r.1)", file: file, line: line)
    for p in parts { XCTAssertTrue(r.1.contains(p), "error text lacks '\(p)': \(r.1)", file: file, line: line) }
  }

  func testExactManifestKeysLoad() throws {
    let r = try open(try manifest().map(WeightSpec.init), name: "exact")
    XCTAssertEqual(r.0, BD_OK, r.1)
  }

  /// model-output=probability is for TorchScript models with their own sigmoid: a BiRefNet session
  /// refuses it by name (BiRefNet returns logits) instead of clamping logits into a wrong matte.
  func testBiRefNetRefusesProbabilityOutput() throws {
    let engine = try Engine.get()
    let url = scratch("probability")
    try Weights.write(try manifest().map { var s = WeightSpec($0); s.zeros = true; return s }, to: url)
    let opened = engine.open(url.path)
    let model = try XCTUnwrap(opened.model, opened.message)
    defer { engine.modelRelease(model) }
    for (output, expected) in [(BD_MODEL_OUTPUT_PROBABILITY, BD_ERR_INVALID_ARGUMENT), (BD_MODEL_OUTPUT_LOGITS, BD_OK)] {
      var config = bd_session_config()
      config.width = 64
      config.height = 64
      config.input_format = BD_FORMAT_RGBA
      config.output_format = BD_FORMAT_RGBA
      config.inference_width = 64
      config.inference_height = 64
      config.max_batch = 1
      config.model_output = output
      var session: OpaquePointer?
      var err = [CChar](repeating: 0, count: 4096)
      XCTAssertEqual(engine.sessionCreate(model, &config, &session, &err, err.count), expected, String(cString: err))
      if let session { engine.sessionDestroy(session) }
      if expected != BD_OK {
        XCTAssertEqual(String(cString: err), "model-output=probability is for TorchScript models that end with a sigmoid; "
                         + "BiRefNet returns logits: leave model-output at logits")
      }
    }
  }

  func testWithoutTrainingOnlyKeysLoads() throws {
    let specs = try manifest().filter { $0.usedInInference }.map(WeightSpec.init)
    XCTAssertTrue(specs.count < 586)
    let r = try open(specs, name: "inference-only")
    XCTAssertEqual(r.0, BD_OK, r.1)
  }

  func testMissingKey() throws {
    let key = "decoder.decoder_block3.conv_in.weight"
    let r = try open(try manifest().filter { $0.key != key }.map(WeightSpec.init), name: "missing")
    assertModelError(r, contains: ["1 missing key", key, "[64, 960, 3, 3]", "swin_v1_t"])
  }

  func testExtraKey() throws {
    var specs = try manifest().map(WeightSpec.init)
    specs.append(WeightSpec(key: "decoder.extra_head.weight", dtype: "F32", shape: [4, 4]))
    let r = try open(specs, name: "extra")
    assertModelError(r, contains: ["1 unexpected key", "decoder.extra_head.weight"])
  }

  func testWrongShape() throws {
    let key = "bb.layers.1.blocks.0.mlp.fc1.weight"
    let specs = try manifest().map { m -> WeightSpec in
      var s = WeightSpec(m)
      if m.key == key { s.shape = [700, 192] }
      return s
    }
    let r = try open(specs, name: "shape")
    assertModelError(r, contains: ["wrong shape", key, "has [700, 192], expected [768, 192]"])
  }

  func testWrongDtype() throws {
    let key = "decoder.lateral_block4.conv.bias"
    let specs = try manifest().map { m -> WeightSpec in
      var s = WeightSpec(m)
      if m.key == key { s.dtype = "I64" }
      return s
    }
    let r = try open(specs, name: "dtype")
    assertModelError(r, contains: ["wrong dtype", key, "is I64, expected F32, F16 or BF16"])
  }

  func testUnsupportedDtype() throws {
    let key = "decoder.lateral_block4.conv.bias"
    let specs = try manifest().map { m -> WeightSpec in
      var s = WeightSpec(m)
      if m.key == key { s.dtype = "F64" }
      return s
    }
    let r = try open(specs, name: "f64")
    assertModelError(r, contains: [key, "unsupported dtype 'F64'", "F32, F16, BF16 or I64"])
  }

  /// Several problems are reported together in one error.
  func testProblemsListedTogether() throws {
    var specs = try manifest().filter { $0.key != "decoder.conv_out1.0.bias" && $0.key != "bb.norm3.weight" }
      .map(WeightSpec.init)
    specs.append(WeightSpec(key: "decoder.unknown", dtype: "F32", shape: [1]))
    let r = try open(specs, name: "several")
    assertModelError(r, contains: ["2 missing key", "decoder.conv_out1.0.bias", "bb.norm3.weight", "1 unexpected key",
                                   "decoder.unknown"])
  }

  func testTruncatedFile() throws {
    let engine = try Engine.get()
    let url = scratch("truncated")
    try Weights.write(try manifest().map { var s = WeightSpec($0); s.zeros = true; return s }, to: url)
    let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as! Int
    XCTAssertEqual(truncate(url.path, off_t(size / 2)), 0)
    let r = engine.open(url.path)
    if let m = r.model { engine.modelRelease(m) }
    print("truncated: \(r.message)")
    assertModelError((r.status, r.message), contains: [url.path, "past the data area", "truncated"])
  }

  /// Header bytes cut off in the middle of the JSON.
  func testTruncatedHeader() throws {
    var header = Array("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}".utf8)
    var bytes = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
    header.removeLast(20)
    bytes += header
    assertModelError(try openRaw(bytes, name: "header-cut"), contains: ["runs past the end"])
  }

  private func rawFile(header: String, headerLength: UInt64? = nil, data: [UInt8] = []) -> [UInt8] {
    let h = Array(header.utf8)
    var bytes = withUnsafeBytes(of: (headerLength ?? UInt64(h.count)).littleEndian) { Array($0) }
    bytes += h
    bytes += data
    return bytes
  }

  func testHostileHeaders() throws {
    _ = try manifest()  // skip like the others without fixtures
    let t = "\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"
    assertModelError(try openRaw(rawFile(header: "{\(t)}", headerLength: UInt64.max), name: "huge-length"),
                     contains: ["exceeds the 100 MB limit"])
    assertModelError(try openRaw(rawFile(header: "{\(t)}", headerLength: 200_000_000), name: "big-length"),
                     contains: ["exceeds the 100 MB limit"])
    assertModelError(try openRaw(rawFile(header: "{\"t\":{\"dtype\":\"F32\",", data: [UInt8](repeating: 0, count: 8)),
                                 name: "bad-json"),
                     contains: ["not valid JSON"])
    assertModelError(try openRaw(rawFile(header: "{\"a\":" + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000) + "}"),
                                 name: "deep-json"),
                     contains: ["not valid JSON", "nested too deeply"])
    assertModelError(try openRaw(rawFile(header: "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999]}}",
                                         data: [UInt8](repeating: 0, count: 8)), name: "offset-out"),
                     contains: ["'t'", "past the data area"])
    assertModelError(try openRaw(rawFile(header: "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}",
                                         data: [UInt8](repeating: 0, count: 8)), name: "offset-order"),
                     contains: ["'t'", "not ordered"])
    assertModelError(try openRaw(rawFile(header: "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
                                         data: [UInt8](repeating: 0, count: 8)), name: "numel"),
                     contains: ["'t'", "numel x dtype size"])
    assertModelError(try openRaw(rawFile(header: "{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}",
                                         data: [UInt8](repeating: 0, count: 8)), name: "negative"),
                     contains: ["'t'", "non-negative"])
    assertModelError(try openRaw(rawFile(header: "{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}",
                                         data: [UInt8](repeating: 0, count: 8)), name: "overflow"),
                     contains: ["'t'"])
    let two = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}"
    assertModelError(try openRaw(rawFile(header: "{\(two)}", data: [UInt8](repeating: 0, count: 12)), name: "overlap"),
                     contains: ["overlap"])
    assertModelError(try openRaw(rawFile(header: "{\"__metadata__\":{\"patch_order\":5}}"), name: "meta"),
                     contains: ["__metadata__"])
    assertModelError(try openRaw(rawFile(header: "{\"__metadata__\":{\"patch_order\":\"sideways\"}}"), name: "meta-value"),
                     contains: ["patch_order", "sideways", "'legacy' or 'current'"])
    // Valid file, but not a BiRefNet checkpoint.
    assertModelError(try openRaw(rawFile(header: "{\(t)}", data: [UInt8](repeating: 0, count: 8)), name: "not-birefnet"),
                     contains: ["bb.patch_embed.proj.weight", "not a BiRefNet"])
    // Mutations of a valid file (header length, JSON, offsets) never crash or over-read: each is a
    // clean BD_ERR_MODEL (a mutation that stays valid JSON is still not a BiRefNet checkpoint).
    let valid = rawFile(header: "{\"__metadata__\":{\"patch_order\":\"legacy\"},\(t)}", data: [UInt8](repeating: 0, count: 8))
    var rng = SystemRandomNumberGenerator()
    for i in 0..<150 {
      var bytes = valid
      for _ in 0..<Int.random(in: 1...3, using: &rng) {
        let at = Int.random(in: 0..<(bytes.count - 8), using: &rng)
        bytes[at] = UInt8.random(in: 0...255, using: &rng)
      }
      if i % 10 == 0 { bytes.removeLast(Int.random(in: 1...bytes.count - 9, using: &rng)) }
      let r = try openRaw(bytes, name: "mutated-\(i)")
      XCTAssertEqual(r.0, BD_ERR_MODEL, r.1)
      XCTAssertFalse(r.1.isEmpty)
    }
  }

  /// `module.` and `_orig_mod.` prefixes (also stacked) are stripped; the values still match.
  func testPrefixesStripped() throws {
    try Paths.requireFixtures(["variant_a_swin_v1_t_256x256_patchorder-legacy.safetensors"])
    let prefixes = ["module.", "_orig_mod.", "module._orig_mod."]
    let specs = try manifest().enumerated().map { i, m -> WeightSpec in
      var s = WeightSpec(m)
      s.key = prefixes[i % 3] + m.key
      s.ruleKey = m.key
      return s
    }
    let url = scratch("prefixed")
    try Weights.write(specs, to: url, metadata: ["patch_order": "legacy"])
    let fixture = try SafeTensorsFile(Paths.fixtures.appendingPathComponent("variant_a_swin_v1_t_256x256_patchorder-legacy.safetensors"))
    let got = try Engine.get().forward(url.path, input: try fixture.modelInput())
    let e = relativeErrors(got["logits"]!, try fixture.floats("logits"))
    print(String(format: "prefixed keys: logits max-rel %.3e", e.max))
    XCTAssertLessThanOrEqual(e.max, 1e-3)
  }

  /// The same name twice after stripping prefixes is an error.
  func testDuplicateAfterStripping() throws {
    var specs = try manifest().map(WeightSpec.init)
    var dup = WeightSpec(key: "module.bb.norm0.bias", dtype: "F32", shape: [96])
    dup.ruleKey = "bb.norm0.bias"
    specs.append(dup)
    let r = try open(specs, name: "duplicate")
    assertModelError(r, contains: ["bb.norm0.bias", "module.bb.norm0.bias", "unique"])
  }

  /// F16 and BF16 files (as the HR/dynamic/512 releases ship) load and are converted at load.
  func testHalfPrecisionFilesLoad() throws {
    try Paths.requireFixtures(["variant_a_swin_v1_t_256x256.safetensors"])
    let fixture = try SafeTensorsFile(Paths.fixtures.appendingPathComponent("variant_a_swin_v1_t_256x256.safetensors"))
    var input = try fixture.modelInput()
    input.shape[0] = 1
    input.values = Array(input.values.prefix(3 * 256 * 256))
    var ref = try fixture.floats("logits")
    ref.shape[0] = 1
    ref.values = Array(ref.values.prefix(256 * 256))
    for dtype in ["F16", "BF16"] {
      let specs = try manifest().map { m -> WeightSpec in
        var s = WeightSpec(m)
        if s.dtype == "F32" { s.dtype = dtype }
        return s
      }
      let url = scratch("weights-\(dtype)")
      try Weights.write(specs, to: url)
      let got = try Engine.get().forward(url.path, input: input)
      let logits = try XCTUnwrap(got["logits"])
      XCTAssertTrue(logits.values.allSatisfy { $0.isFinite })
      let e = relativeErrors(logits, ref)
      // Rounding the weights to 11 (F16) or 8 (BF16) significant bits moves the logits a little.
      print(String(format: "%@ weights: logits max-rel vs F32 fixture %.3e, rms-rel %.3e", dtype, e.max, e.rms))
      XCTAssertLessThan(e.rms, dtype == "F16" ? 0.02 : 0.2)
    }
  }
}
