// The built plugin used exactly as a user would: gst-inspect-1.0 and gst-launch-1.0 with
// GST_PLUGIN_PATH pointing at a folder that holds only the plugin.
import Foundation
import XCTest

final class CommandLineTests: XCTestCase {
  func run(_ tool: String, _ arguments: [String], extraEnvironment: [String: String] = [:]) throws -> ToolResult {
    try runTool("/usr/bin/\(tool)", arguments, extraEnvironment: extraEnvironment)
  }

  func testInspectDocumentsTheElement() throws {
    let result = try run("gst-inspect-1.0", ["birefnetmatte"])
    XCTAssertEqual(result.status, 0, result.stderr)
    for text in ["BiRefNet background matting", "model-file", "device", "precision", "batch-size", "Default: 4",
                 "inference-width", "inference-height", "threshold", "matte-mode", "background", "background-color",
                 "background-image", "blur-radius", "batch-timeout", "threads", "engine-library", "qos",
                 "A420", "GRAY8", "NV12", "changeable only in NULL or READY state"] {
      XCTAssertTrue(result.stdout.contains(text), "gst-inspect-1.0 output lacks \(text)")
    }
    // spatial refinement (issue 9): the properties, their enum values and defaults
    for text in ["edge-refine", "Default: 1, \"guided\"", "(0): none", "foreground-estimate", "Default: true",
                 "cascade", "Default: 0, \"off\"", "(1): auto", "cascade-size", "Default: 512"] {
      XCTAssertTrue(result.stdout.contains(text), "gst-inspect-1.0 output lacks \(text)")
    }
  }

  func testInspectDoesNotLoadLibtorch() throws {
    // The dynamic loader lists every library it opens; the engine and libtorch must not be among
    // them when the plugin is only inspected (they load when an element starts).
    let result = try run("gst-inspect-1.0", ["birefnetmatte"], extraEnvironment: ["LD_DEBUG": "files", "GST_REGISTRY_FORK": "no"])
    XCTAssertEqual(result.status, 0)
    XCTAssertTrue(result.stderr.contains("libgstbackdrop.so"), "LD_DEBUG should show the plugin being loaded")
    XCTAssertFalse(result.stderr.contains("libtorch"), "gst-inspect-1.0 loaded libtorch")
    XCTAssertFalse(result.stderr.contains("libbackdrop-torch"), "gst-inspect-1.0 loaded the engine")
  }

  func testLaunchWritesAMatteAndPrintsNothingOfItsOwn() throws {
    let directory = try TestEnvironment.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let output = directory.appendingPathComponent("matte.gray").path
    let result = try run("gst-launch-1.0", [
      "-q", "videotestsrc", "num-buffers=3", "pattern=white", "!", "video/x-raw,width=48,height=32", "!",
      "birefnetmatte", "model-file=\(TestEnvironment.designedModel("lumakey"))", "device=cpu",
      "inference-width=64", "inference-height=32", "!", "video/x-raw,format=GRAY8", "!", "filesink", "location=\(output)",
    ])
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertEqual(result.stdout, "", "nothing on stdout with -q")
    let bytes = try Data(contentsOf: URL(fileURLWithPath: output))
    XCTAssertEqual(bytes.count, 3 * 48 * 32)
    XCTAssertEqual(Set(bytes), [255])
  }

  func testLaunchReportsAMissingModel() throws {
    let result = try run("gst-launch-1.0", ["videotestsrc", "num-buffers=1", "!", "birefnetmatte", "model-file=/nope/m.pt", "!", "fakesink"])
    XCTAssertNotEqual(result.status, 0)
    XCTAssertTrue(result.stderr.contains("/nope/m.pt does not exist") || result.stdout.contains("/nope/m.pt does not exist"),
                  "stdout: \(result.stdout) stderr: \(result.stderr)")
  }
}
