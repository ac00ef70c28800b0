// A TorchScript model can carry the inference size it prefers (extra file backdrop/inference_size);
// birefnetmatte uses it unless inference-width/height are set. The probe model made here answers
// "foreground" only when it is run at exactly 160×96, so the matte shows which size was used.
import Foundation
import XCTest

final class PreferredInferenceSizeTests: XCTestCase {
  var directory: URL!

  override func setUpWithError() throws {
    directory = try TestEnvironment.temporaryDirectory()
  }

  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  /// Writes the probe model, with or without a recorded size.
  func makeProbe(_ name: String, size: String?) throws -> String {
    let path = directory.appendingPathComponent(name).path
    let extra = size.map { "{'backdrop/inference_size': '\($0)'}" } ?? "{}"
    let script = """
      import torch
      class SizeProbe(torch.nn.Module):
          def forward(self, x):
              sign = 1.0 if x.shape[2] == 96 and x.shape[3] == 160 else -1.0
              return torch.full_like(x[:, :1], 20.0 * sign)
      torch.jit.save(torch.jit.script(SizeProbe()), '\(path)', _extra_files=\(extra))
      """
    // TorchScript compiles from source: the script must be a file.
    let scriptFile = directory.appendingPathComponent("make_\(name).py")
    try script.write(to: scriptFile, atomically: true, encoding: .utf8)
    let result = try runTool("/usr/bin/python3", [scriptFile.path])
    XCTAssertEqual(result.status, 0, "python3-torch makes the probe model: \(result.stderr)")
    return path
  }

  /// The first matte pixel of a grey 80×48 frame through the model with these extra properties.
  func matteValue(_ model: String, _ properties: [String] = []) throws -> UInt8? {
    let output = directory.appendingPathComponent("matte-\(UUID().uuidString).gray").path
    let result = try runTool("/usr/bin/gst-launch-1.0", [
      "-q", "videotestsrc", "num-buffers=1", "pattern=solid-color", "foreground-color=0xff808080", "!", "video/x-raw,width=80,height=48", "!",
      "birefnetmatte", "model-file=\(model)",
    ] + properties + ["!", "video/x-raw,format=GRAY8", "!", "filesink", "location=\(output)"])
    XCTAssertEqual(result.status, 0, result.stderr)
    return (try? Data(contentsOf: URL(fileURLWithPath: output)))?.first
  }

  func testRecordedSizeIsUsedUnlessASizeIsSet() throws {
    let model = try makeProbe("probe-160x96.pt", size: "160x96")
    XCTAssertEqual(try matteValue(model), 255, "no size set: the model's own 160×96")
    XCTAssertEqual(try matteValue(model, ["inference-width=64", "inference-height=64"]), 0, "a size that was set wins")
    XCTAssertEqual(try matteValue(model, ["inference-width=160", "inference-height=96"]), 255)
  }

  func testWithoutARecordedSizeTheDefaultIs512() throws {
    let model = try makeProbe("probe.pt", size: nil)
    XCTAssertEqual(try matteValue(model), 0, "512×512, not 160×96")
    XCTAssertEqual(try matteValue(model, ["inference-width=160", "inference-height=96"]), 255)
    let garbled = try makeProbe("probe-bad.pt", size: "wide")
    XCTAssertEqual(try matteValue(garbled), 0, "an unreadable size is no preference")
  }
}
