// scripts/install.sh --prefix: the Debian package's layout under any prefix, from the release
// build, and --uninstall removing exactly what it installed. The installed `backdrop` must find its
// plugin (PREFIX/lib/<triplet>/gstreamer-1.0, a folder GStreamer does not search by default), the
// engine (through the plugin) and the default model (PREFIX/share/backdrop/models) by itself.
import Foundation
import XCTest

final class InstallScriptTests: XCTestCase {
  func testInstallUseAndUninstallUnderAPrefix() throws {
    let release = Launcher.packageRoot.appendingPathComponent(".build-install/release")
    for file in ["backdrop", "libgstbackdrop.so", "libbackdrop-torch.so"] where !FileManager.default.fileExists(atPath: release.appendingPathComponent(file).path) {
      throw XCTSkip("no release build in .build-install (\(file)): scripts/install.sh makes it (DebianPackageTests runs it)")
    }
    guard FileManager.default.fileExists(atPath: Launcher.packageRoot.appendingPathComponent("models/selfie/selfie.pt").path) else {
      throw XCTSkip("run scripts/setup-models.sh first: install.sh installs the selfie model")
    }
    let work = try Launcher.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: work) }
    let prefix = work.appendingPathComponent("prefix").path
    let script = Launcher.packageRoot.appendingPathComponent("scripts/install.sh").path
    let install = try runProgram("/bin/bash", [script, "--no-build", "--prefix", prefix])
    XCTAssertEqual(install.status, 0, install.stderr)
    for path in ["bin/backdrop", "lib/x86_64-linux-gnu/gstreamer-1.0/libgstbackdrop.so", "lib/x86_64-linux-gnu/backdrop/libbackdrop-torch.so",
                 "share/backdrop/models/selfie.pt", "share/backdrop/models/registry.json", "share/backdrop/pth_to_safetensors.py",
                 "share/man/man1/backdrop-compose.1",
                 "share/bash-completion/completions/backdrop", "share/zsh/vendor-completions/_backdrop",
                 "share/fish/vendor_completions.d/backdrop.fish"] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: "\(prefix)/\(path)"), "installed \(path)")
    }
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(prefix)/lib/x86_64-linux-gnu/gstreamer-1.0"), ["libgstbackdrop.so"],
                   "nothing but the plugin in the plugin folder")

    // Used from the prefix with a plain environment: plugin, engine and default model found.
    let environment = Launcher.environment(cache: work.appendingPathComponent("cache"), extra: ["BACKDROP_MODELS": ""])
    let path = try runProgram("\(prefix)/bin/backdrop", ["models", "path", "selfie"], environment: environment)
    XCTAssertEqual(path.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "\(prefix)/share/backdrop/models/selfie.pt", path.stderr)
    let clip = work.appendingPathComponent("bars.webm").path
    try ComposeTests.makeClip(clip, frames: 4, width: 160, height: 96, fps: 10)
    let output = work.appendingPathComponent("out.webm").path
    let compose = try runProgram("\(prefix)/bin/backdrop", ["compose", clip, "-o", output, "--model", Launcher.designedModel("lumakey"), "--json"],
                                 environment: environment)
    XCTAssertEqual(compose.status, 0, compose.stderr)
    XCTAssertEqual(try ffprobe(output).video?.frames, 4)
    let printed = try runProgram("\(prefix)/bin/backdrop", ["compose", clip, "-o", output, "--print-pipeline"], environment: environment)
    XCTAssertTrue(printed.stdout.contains("model-file=\"\(prefix)/share/backdrop/models/selfie.pt\""), printed.stdout)

    let uninstall = try runProgram("/bin/bash", [script, "--prefix", prefix, "--uninstall"])
    XCTAssertEqual(uninstall.status, 0, uninstall.stderr)
    let left = FileManager.default.enumerator(atPath: prefix)?.compactMap { $0 as? String }
      .filter { !FileManager.default.fileExists(atPath: "\(prefix)/\($0)/.") } ?? []  // files, not folders
    XCTAssertEqual(left, [], "uninstall removes every installed file")
  }
}
