// PyTorch checkpoints (.pth, as the official GitHub releases ship BiRefNet): the engine refuses
// them with the conversion command, and models/pth_to_safetensors.py turns one into weights that
// reproduce the official logits. Needs Debian's python3 with torch (what setup-models.sh uses).
import CBackdropEngineABI
import Foundation
import XCTest

final class CheckpointConversionTests: XCTestCase {
  private let python = ProcessInfo.processInfo.environment["BACKDROP_PYTHON"] ?? "/usr/bin/python3"
  private var converter: String { Paths.packageRoot.appendingPathComponent("models/pth_to_safetensors.py").path }

  override class func tearDown() {
    Weights.remove("swin_v1_t")
    super.tearDown()
  }

  /// Runs python3 with a script and arguments; returns the exit status and stderr.
  @discardableResult
  private func runPython(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
  }

  private func requireTorch() throws {
    guard FileManager.default.isExecutableFile(atPath: python),
      (try? runPython(["-c", "import torch"]).status) == 0
    else { throw XCTSkip("\(python) with torch is needed (Debian: python3-torch; scripts/install-deps.sh installs it)") }
  }

  func testCheckpointsAreRefusedWithTheConversionCommand() throws {
    try requireTorch()
    let engine = try Engine.get()
    let zip = Weights.scratch.appendingPathComponent("tiny-zip.pth").path
    let legacy = Weights.scratch.appendingPathComponent("tiny-legacy.pth").path
    defer { for p in [zip, legacy] { try? FileManager.default.removeItem(atPath: p) } }
    let made = try runPython(["-c", """
      import collections, sys, torch
      sd = collections.OrderedDict([("bb.patch_embed.proj.weight", torch.zeros(96, 3, 4, 4))])
      torch.save(sd, sys.argv[1])
      torch.save(sd, sys.argv[2], _use_new_zipfile_serialization=False)
      """, zip, legacy])
    XCTAssertEqual(made.status, 0, made.stderr)
    for path in [zip, legacy] {
      let opened = engine.open(path)
      XCTAssertEqual(opened.status, BD_ERR_MODEL, opened.message)
      XCTAssertNil(opened.model)
      XCTAssertTrue(opened.message.contains("model-file \(path) is a PyTorch checkpoint"), opened.message)
      XCTAssertTrue(opened.message.contains("python3 pth_to_safetensors.py \(path) OUT.safetensors"), opened.message)
    }
  }

  /// A checkpoint laid out as training scripts save it (state dict under "model", DDP's "module."
  /// prefix, optimizer state beside it) converts into weights that give the official logits.
  func testConvertedCheckpointMatchesTheOfficialLogits() throws {
    try requireTorch()
    try Paths.requireFixtures(["variant_a_swin_v1_t_256x256.safetensors", "manifest_swin_v1_t.json"])
    let weights = try Weights.manifestFile("swin_v1_t")
    let pth = Weights.scratch.appendingPathComponent("training-checkpoint.pth").path
    let converted = Weights.scratch.appendingPathComponent("converted.safetensors").path
    defer { for p in [pth, converted] { try? FileManager.default.removeItem(atPath: p) } }
    // The safetensors weights read with nothing but json and torch (no safetensors package here).
    let made = try runPython(["-c", """
      import collections, json, struct, sys, torch
      raw = open(sys.argv[1], "rb").read()
      n = struct.unpack("<Q", raw[:8])[0]
      header = json.loads(raw[8:8 + n])
      dtypes = {"F32": torch.float32, "I64": torch.int64}
      sd = collections.OrderedDict()
      for name, e in header.items():
          if name == "__metadata__":
              continue
          a, b = e["data_offsets"]
          t = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=dtypes[e["dtype"]]).reshape(e["shape"])
          sd["module." + name] = t
      torch.save({"epoch": 244, "model": sd, "optimizer": {"step": 1000}}, sys.argv[2])
      """, weights.path, pth])
    XCTAssertEqual(made.status, 0, made.stderr)

    let conversion = try runPython([converter, pth, converted, "--patch-order", "current"])
    XCTAssertEqual(conversion.status, 0, conversion.stderr)
    XCTAssertTrue(conversion.stdout.contains("586 tensors, 44,362,703 values"), conversion.stdout)
    let file = try SafeTensorsFile(URL(fileURLWithPath: converted))
    XCTAssertEqual(file.metadata["patch_order"], "current")
    XCTAssertEqual(file.entries["module.bb.patch_embed.proj.weight"]?.shape, [96, 3, 4, 4])

    let fixture = try SafeTensorsFile(Paths.fixtures.appendingPathComponent("variant_a_swin_v1_t_256x256.safetensors"))
    let got = try Engine.get().forward(converted, input: try fixture.modelInput())
    let e = relativeErrors(try XCTUnwrap(got["logits"]), try fixture.floats("logits"))
    print(String(format: "converted checkpoint: logits max-rel %.3e", e.max))
    XCTAssertLessThanOrEqual(e.max, tolerance(for: "logits"))
  }

  func testConverterExplainsWhatItCannotConvert() throws {
    try requireTorch()
    let pth = Weights.scratch.appendingPathComponent("no-state-dict.pth").path
    defer { try? FileManager.default.removeItem(atPath: pth) }
    let made = try runPython(["-c", "import sys, torch; torch.save({'epoch': 3, 'note': 'x'}, sys.argv[1])", pth])
    XCTAssertEqual(made.status, 0, made.stderr)
    let out = Weights.scratch.appendingPathComponent("never.safetensors").path
    let run = try runPython([converter, pth, out])
    XCTAssertEqual(run.status, 1)
    XCTAssertTrue(run.stderr.contains("\(pth) holds no state dict"), run.stderr)
    XCTAssertTrue(run.stderr.contains("its keys: epoch, note"), run.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: out))
  }
}
