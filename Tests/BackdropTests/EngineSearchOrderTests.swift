// Where birefnetmatte looks for libbackdrop-torch.so. Installed (Debian package, scripts/install.sh)
// the plugin is PREFIX/lib/<triplet>/gstreamer-1.0/libgstbackdrop.so and the engine sits in the
// private folder PREFIX/lib/<triplet>/backdrop/, which must come before everything implicit.
import BackdropEngineClient
import CBackdropShim
import CGStreamer
import GstBackdrop
import XCTest

final class EngineSearchOrderTests: XCTestCase {
  func testInstalledPluginLooksInItsPrivateEngineFolderFirst() {
    let order = EngineLibrary.searchOrder(
      explicitPath: nil, environmentPath: nil,
      pluginFile: "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstbackdrop.so")
    XCTAssertEqual(order.map(\.path), [
      "/usr/lib/x86_64-linux-gnu/backdrop/libbackdrop-torch.so",
      "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libbackdrop-torch.so",
      "libbackdrop-torch.so",
    ])
    XCTAssertEqual(order.map(\.origin), ["private engine folder", "plugin directory", "system library path"])
  }

  func testABuildFolderIsFoundThroughThePluginDirectory() {
    let order = EngineLibrary.searchOrder(
      explicitPath: "", environmentPath: "", pluginFile: "/src/backdrop/.build/release/libgstbackdrop.so")
    XCTAssertEqual(order.map(\.path), [
      "/src/backdrop/.build/backdrop/libbackdrop-torch.so",
      "/src/backdrop/.build/release/libbackdrop-torch.so",
      "libbackdrop-torch.so",
    ])
  }

  func testAPathTheUserGaveIsTheOnlyPlaceTried() {
    let plugin = "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstbackdrop.so"
    XCTAssertEqual(
      EngineLibrary.searchOrder(explicitPath: "/opt/cuda/libbackdrop-torch.so", environmentPath: "/env/engine.so", pluginFile: plugin)
        .map { [$0.path, $0.origin] },
      [["/opt/cuda/libbackdrop-torch.so", "engine-library property"]])
    XCTAssertEqual(
      EngineLibrary.searchOrder(explicitPath: nil, environmentPath: "/env/engine.so", pluginFile: plugin).map { [$0.path, $0.origin] },
      [["/env/engine.so", "BACKDROP_ENGINE"]])
  }

  /// The installed layout for real: a copy of the plugin (not a link: the plugin resolves links to
  /// its real file) in lib/gstreamer-1.0 and the engine in lib/backdrop only. A matte that runs
  /// proves the private folder was used: nothing else has an engine.
  func testPluginCopyFindsTheEngineInThePrivateFolder() throws {
    let root = try TestEnvironment.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: root) }
    let pluginFolder = root.appendingPathComponent("lib/gstreamer-1.0")
    let engineFolder = root.appendingPathComponent("lib/backdrop")
    try FileManager.default.createDirectory(at: pluginFolder, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(at: engineFolder, withIntermediateDirectories: true)
    try FileManager.default.copyItem(
      at: TestEnvironment.buildDirectory.appendingPathComponent("libgstbackdrop.so"),
      to: pluginFolder.appendingPathComponent("libgstbackdrop.so"))
    try FileManager.default.createSymbolicLink(
      at: engineFolder.appendingPathComponent("libbackdrop-torch.so"),
      withDestinationURL: TestEnvironment.buildDirectory.appendingPathComponent("libbackdrop-torch.so"))
    let output = root.appendingPathComponent("matte.gray").path
    let result = try runTool("/usr/bin/gst-launch-1.0", [
      "-q", "videotestsrc", "num-buffers=2", "pattern=white", "!", "video/x-raw,width=64,height=48", "!",
      "birefnetmatte", "model-file=\(TestEnvironment.designedModel("lumakey"))", "inference-width=64", "inference-height=64",
      "!", "video/x-raw,format=GRAY8", "!", "filesink", "location=\(output)",
    ], extraEnvironment: [
      "GST_PLUGIN_PATH": pluginFolder.path, "GST_REGISTRY": root.appendingPathComponent("registry.bin").path,
      "LD_LIBRARY_PATH": "",
    ])
    XCTAssertEqual(result.status, 0, result.stderr)
    let matte = [UInt8](try Data(contentsOf: URL(fileURLWithPath: output)))
    XCTAssertEqual(matte.count, 2 * 64 * 48)
    XCTAssertEqual(matte.first, 255, "white is foreground for the luma key")
  }
}
