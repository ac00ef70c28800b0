// The Debian package end to end: scripts/package-deb.sh builds gstreamer1.0-backdrop_*.deb from a
// release build, scripts/test-deb.sh installs it with apt into a fresh Debian 12 root made by
// debootstrap and runs gst-inspect-1.0, a gst-launch-1.0 transparent-WebM pipeline and
// `backdrop compose` with the default model there, with no environment variable. What it wrote is
// checked here with the host's ffmpeg.
//
// Cost: the release build (about 5-10 minutes on 2 cores when nothing is built yet) and the root
// (first run about 5-8 minutes with downloads; later 1-2 minutes from the caches in
// /var/cache/backdrop). Needs root, debootstrap and a Debian mirror; BACKDROP_SKIP_DEB_TEST=1
// skips it.
import Foundation
import XCTest

final class DebianPackageTests: XCTestCase {
  func testPackageInstallsAndRunsInAFreshDebian12Root() throws {
    let environment = ProcessInfo.processInfo.environment
    if environment["BACKDROP_SKIP_DEB_TEST"] == "1" { throw XCTSkip("BACKDROP_SKIP_DEB_TEST=1") }
    guard getuid() == 0 else { throw XCTSkip("installing into a debootstrap root needs root") }
    guard which("debootstrap") != nil || FileManager.default.isExecutableFile(atPath: "/usr/sbin/debootstrap") else {
      throw XCTSkip("debootstrap is not installed (scripts/install-deps.sh installs it)")
    }
    let selfie = Launcher.packageRoot.appendingPathComponent("models/selfie/selfie.pt").path
    guard FileManager.default.fileExists(atPath: selfie) else {
      throw XCTSkip("the package ships the selfie model: run scripts/setup-models.sh first")
    }
    let work = try Launcher.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: work) }
    var toolEnvironment = environment
    for key in ["GST_PLUGIN_PATH", "BACKDROP_ENGINE", "BACKDROP_PLUGIN", "BACKDROP_MODELS"] { toolEnvironment.removeValue(forKey: key) }
    toolEnvironment["PATH"] = (environment["PATH"] ?? "/usr/bin:/bin") + ":/usr/sbin:/sbin"

    // 1. The package.
    let build = try runProgram("/bin/bash", [Launcher.packageRoot.appendingPathComponent("scripts/package-deb.sh").path,
                                             work.appendingPathComponent("dist").path],
                               environment: toolEnvironment, timeout: 1800)
    XCTAssertEqual(build.status, 0, build.stderr)
    let deb = try XCTUnwrap(build.stdoutLines.last)
    XCTAssertTrue(deb.hasSuffix("_amd64.deb") && (deb as NSString).lastPathComponent.hasPrefix("gstreamer1.0-backdrop_"), deb)
    let contents = try runProgram("/usr/bin/dpkg-deb", ["-c", deb]).stdout
    for path in [
      "./usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstbackdrop.so", "./usr/lib/x86_64-linux-gnu/backdrop/libbackdrop-torch.so",
      "./usr/bin/backdrop", "./usr/share/backdrop/models/selfie.pt", "./usr/share/backdrop/models/registry.json",
      "./usr/share/backdrop/pth_to_safetensors.py",
      "./usr/share/man/man1/backdrop.1.gz", "./usr/share/man/man1/backdrop-compose.1.gz",
      "./usr/share/bash-completion/completions/backdrop", "./usr/share/zsh/vendor-completions/_backdrop",
      "./usr/share/fish/vendor_completions.d/backdrop.fish", "./usr/share/doc/gstreamer1.0-backdrop/copyright",
    ] {
      XCTAssertTrue(contents.contains(" \(path)\n"), "package has \(path)")
    }
    XCTAssertFalse(contents.contains("gstreamer-1.0/libbackdrop-torch.so"), "no engine in the plugin folder")
    let depends = try runProgram("/usr/bin/dpkg-deb", ["-f", deb, "Depends"]).stdout
    for package in ["libc6", "libgstreamer1.0-0", "libtorch1.13", "libvpx7", "gstreamer1.0-plugins-base", "gstreamer1.0-plugins-good"] {
      XCTAssertTrue(depends.contains(package), "Depends names \(package): \(depends)")
    }

    // 2. Installed in a fresh root and used there.
    let out = work.appendingPathComponent("out")
    let run = try runProgram("/bin/bash", [Launcher.packageRoot.appendingPathComponent("scripts/test-deb.sh").path, deb, out.path],
                             environment: toolEnvironment, timeout: 1800)
    XCTAssertEqual(run.status, 0, run.stderr)
    func text(_ name: String) -> String { (try? String(contentsOf: out.appendingPathComponent(name), encoding: .utf8)) ?? "" }

    // (/lib is /usr/lib in Debian 12: GStreamer may name either.)
    XCTAssertTrue(text("inspect.txt").contains("lib/x86_64-linux-gnu/gstreamer-1.0/libgstbackdrop.so"), text("inspect.txt"))
    XCTAssertTrue(text("inspect.txt").contains("inference-width"), "element properties listed")
    let scanner = text("scanner-libs.txt")
    XCTAssertTrue(scanner.contains("libgstbackdrop.so"), "the scanner loaded the plugin: \(scanner)")
    XCTAssertFalse(scanner.contains("libtorch"), "the scanner never loads libtorch: \(scanner)")

    let testsrc = try ffprobe(out.appendingPathComponent("testsrc.webm").path)
    XCTAssertEqual(testsrc.video?.frames, 30)
    XCTAssertEqual(testsrc.video?.alphaMode, "1")
    let alpha = try alphaValues(out.appendingPathComponent("testsrc.webm").path)
    XCTAssertTrue(alpha.contains(0) && alpha.contains(255), "transparent background and an opaque ball")

    XCTAssertTrue(text("compose.txt").contains("selfie"), "models list names the default model: \(text("compose.txt"))")
    let composed = try ffprobe(out.appendingPathComponent("composed.webm").path)
    XCTAssertEqual(composed.video?.frames, 15, text("compose.txt"))
    XCTAssertEqual(composed.video?.alphaMode, "1")
    XCTAssertEqual(composed.video?.width, 256)
    XCTAssertFalse(text("docs.txt").contains("No such file"), text("docs.txt"))
    XCTAssertEqual(text("docs.txt").split(separator: "\n").count, 5, text("docs.txt"))

    // The astronaut (when the host has python3-skimage): selfie keeps the person, like MediaPipe.
    let astronaut = out.appendingPathComponent("astronaut.webm").path
    guard FileManager.default.fileExists(atPath: astronaut) else {
      print("astronaut check skipped: the host could not make the photo (python3-skimage)")
      return
    }
    XCTAssertEqual(try ffprobe(astronaut).video?.frames, 3)
    let raw = work.appendingPathComponent("astronaut.rgba").path
    let decoded = try runProgram(which("ffmpeg")!, ["-v", "error", "-c:v", "libvpx-vp9", "-i", astronaut, "-frames:v", "1",
                                                   "-f", "rawvideo", "-pix_fmt", "rgba", raw])
    XCTAssertEqual(decoded.status, 0, decoded.stderr)
    let reference = work.appendingPathComponent("reference.gray").path
    let mask = Launcher.packageRoot.appendingPathComponent("models/selfie/astronaut_reference_mask.png").path
    XCTAssertEqual(try runProgram(which("ffmpeg")!, ["-v", "error", "-i", mask, "-f", "rawvideo", "-pix_fmt", "gray", reference]).status, 0)
    let rgba = [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw)))
    let expected = [UInt8](try Data(contentsOf: URL(fileURLWithPath: reference)))
    XCTAssertEqual(rgba.count, 512 * 512 * 4)
    XCTAssertEqual(expected.count, 512 * 512)
    var both = 0, either = 0
    for pixel in 0..<min(expected.count, rgba.count / 4) {
      let ours = rgba[pixel * 4 + 3] >= 128, theirs = expected[pixel] >= 128
      if ours && theirs { both += 1 }
      if ours || theirs { either += 1 }
    }
    let iou = Double(both) / Double(max(either, 1))
    print("installed package, selfie on the astronaut: IoU \(String(format: "%.3f", iou)) with MediaPipe's mask")
    XCTAssertGreaterThan(iou, 0.95, "the installed default model finds the person")
  }

  /// The distinct alpha values of a VP9-alpha WebM, decoded by ffmpeg's libvpx-vp9.
  func alphaValues(_ path: String) throws -> Set<UInt8> {
    let raw = path + ".rgba"
    let result = try runProgram(which("ffmpeg")!, ["-v", "error", "-c:v", "libvpx-vp9", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgba", raw])
    XCTAssertEqual(result.status, 0, result.stderr)
    let bytes = [UInt8]((try? Data(contentsOf: URL(fileURLWithPath: raw))) ?? Data())
    return Set(stride(from: 3, to: bytes.count, by: 4).map { bytes[$0] })
  }
}
