// The page of `backdrop serve` in headless Chromium and Firefox, driven as a person would (serve_page.py):
// pick a generated clip with audio, choose a colour backdrop, start, watch the progress reach
// 100 %, see transparency in the preview (canvas readback), download both files and check them.
import Foundation
import XCTest

final class ServePageTests: XCTestCase {
  func testChromiumUploadsWatchesPreviewsAndDownloads() throws {
    guard which("chromium") != nil || which("chromium-browser") != nil else {
      throw XCTSkip("chromium is not installed (scripts/install-deps.sh installs it)")
    }
    try drive("chromium")
  }

  func testFirefoxUploadsWatchesPreviewsAndDownloads() throws {
    guard which("firefox-esr") != nil || which("firefox") != nil else {
      throw XCTSkip("firefox is not installed (scripts/install-deps.sh installs it)")
    }
    try drive("firefox")
  }

  func drive(_ browser: String) throws {
    let scratch = try Build.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let clip = scratch.appendingPathComponent("bars.webm")
    try makeClip(clip.path, frames: 30)
    let downloads = scratch.appendingPathComponent("downloads")
    try FileManager.default.createDirectory(at: downloads, withIntermediateDirectories: true)
    let token = "page-test-token"
    let server = try ServerProcess(
      data: scratch.appendingPathComponent("data"),
      arguments: ["--add-model", "lumakey=\(Build.lumakey)", "--token", token], scratch: scratch)
    defer { server.stop() }
    // BACKDROP_SCREENSHOT=PATH keeps a screenshot of the finished page (the README's picture).
    let screenshot = browser == "chromium"
      ? ProcessInfo.processInfo.environment["BACKDROP_SCREENSHOT"] ?? scratch.appendingPathComponent("page.png").path
      : scratch.appendingPathComponent("page-\(browser).png").path
    let script = Build.packageRoot.appendingPathComponent("Tests/ServeTests/serve_page.py").path
    let run = try runProgram(which("python3") ?? "/usr/bin/python3", [
      script, "--browser", browser, "--url", server.url.absoluteString, "--video", clip.path, "--downloads", downloads.path,
      "--screenshot", screenshot, "--phone-screenshot", screenshot.replacingOccurrences(of: ".png", with: "-phone.png"),
    ], timeout: 400)
    XCTAssertEqual(run.status, 0, "serve_page.py --browser \(browser): \(run.stdout)\n\(run.stderr)\nserver: \(server.log)")
    let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], run.stdout)

    XCTAssertEqual(report["error"] as? String, "")
    XCTAssertTrue((report["models"] as? [String] ?? []).contains("lumakey"))
    let progress = report["progress"] as? [Double] ?? []
    XCTAssertGreaterThanOrEqual(progress.count, 2, "progress events seen: \(progress)")
    XCTAssertEqual(progress, progress.sorted(), "progress is monotonic")
    XCTAssertEqual(progress.last, 100)
    XCTAssertEqual(report["percent_text"] as? String, "100.0 %")
    XCTAssertEqual(report["state"] as? String, "done")

    let readback = try XCTUnwrap(report["readback"] as? [String: Any])
    XCTAssertEqual(readback["width"] as? Int, 160)
    XCTAssertEqual(readback["height"] as? Int, 96)
    XCTAssertGreaterThan((readback["subject"] as? [Int])?[3] ?? 0, 240, "white bar opaque in the preview: \(readback)")
    XCTAssertLessThan((readback["background"] as? [Int])?[3] ?? 255, 15, "blue bar transparent in the preview: \(readback)")
    XCTAssertEqual(readback["checker"] as? Bool, true, "the preview sits on a checkerboard")
    XCTAssertEqual(readback["backdrop"] as? String, "rgb(51, 102, 204)", "and over the chosen colour")
    XCTAssertEqual(report["job_row"] as? [String], ["bars.webm", "done", "100 %", "WEBMMP4"])

    XCTAssertEqual(report["downloads"] as? [String], ["bars-color.mp4", "bars-transparent.webm"])
    let webm = try ffprobe(downloads.appendingPathComponent("bars-transparent.webm").path)
    XCTAssertEqual(webm.map(\.kind).sorted(), ["audio", "video"])
    XCTAssertEqual(webm.first { $0.kind == "video" }?.frames, 30)
    XCTAssertEqual(webm.first { $0.kind == "video" }?.alphaMode, "1")
    let alpha = try decodeFrames(downloads.appendingPathComponent("bars-transparent.webm").path, format: "RGBA", width: 160, height: 96)
    XCTAssertEqual(alpha.count, 30)
    if let frame = alpha.first {
      XCTAssertGreaterThan(frame[(30 * 160 + 10) * 4 + 3], 240)
      XCTAssertLessThan(frame[(30 * 160 + 150) * 4 + 3], 15)
    }
    let mp4 = try ffprobe(downloads.appendingPathComponent("bars-color.mp4").path)
    XCTAssertEqual(mp4.map(\.codec).sorted(), ["aac", "h264"])
    XCTAssertEqual(mp4.first { $0.kind == "video" }?.frames, 30)

    XCTAssertEqual(report["phone_overflow"] as? Bool, false, "nothing wider than a phone's screen")
    let size = ((try? FileManager.default.attributesOfItem(atPath: screenshot))?[.size] as? NSNumber)?.intValue ?? 0
    XCTAssertGreaterThan(size, 10_000, "a screenshot of the finished page")
  }
}
