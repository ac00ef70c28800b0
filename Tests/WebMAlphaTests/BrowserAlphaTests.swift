// Real browsers: headless Chromium and Firefox seek a webmalphamux file, draw frames to a
// canvas and read alpha back with getImageData (Tests/Browser/alpha.html, driven by
// Tests/Browser/browser_alpha.py). Skipped, with the reason printed, where a browser is missing.
import Foundation
import XCTest

final class BrowserAlphaTests: XCTestCase {
  static let pattern = AlphaPattern(width: 320, height: 240, frames: 45)
  nonisolated(unsafe) static var workDirectory: URL!
  nonisolated(unsafe) static var seekableFile: URL!
  nonisolated(unsafe) static var liveFile: URL!

  static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
  static let driver = repositoryRoot.appendingPathComponent("Tests/Browser/browser_alpha.py").path

  override class func setUp() {
    super.setUp()
    XCTAssertTrue(WebMTestEnvironment.ready)
    workDirectory = try! WebMTestEnvironment.temporaryDirectory("browser")
    let raw = workDirectory.appendingPathComponent("pattern.a420")
    try! pattern.write(to: raw)
    seekableFile = workDirectory.appendingPathComponent("alpha.webm")
    liveFile = workDirectory.appendingPathComponent("alpha-live.webm")
    // The seekable file also carries Opus audio, as a matted clip with its sound would.
    let audio = "audiotestsrc num-buffers=75 samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=2 ! opusenc ! mux."
    for (file, mux, extra) in [(seekableFile!, "webmalphamux name=mux", audio), (liveFile!, "webmalphamux streamable=true", "")] {
      let outcome = runPipeline(
        "\(pattern.rawVideoSource(raw.path)) ! vp9alphaenc keyframe-max-dist=15 ! \(mux) ! filesink location=\(file.path) \(extra)")
      XCTAssertNil(outcome.error, outcome.error ?? "")
    }
  }

  override class func tearDown() {
    try? FileManager.default.removeItem(at: workDirectory)
    super.tearDown()
  }

  /// Frames probed: keyframes (0, 15, 30) and frames between them (decoded from a keyframe).
  static let probedFrames = [0, 8, 15, 22, 30, 44]

  struct Probe {
    let frame: Int
    let points: [(x: Int, y: Int, alpha: UInt8, tolerance: Int)]
  }

  /// Transparent, half-transparent, opaque and gradient points of each probed frame. Browsers
  /// scale and filter a little, so the bounds are ±10 (flat regions) and ±14 (gradient).
  func probes() -> [Probe] {
    Self.probedFrames.map { frame in
      Probe(frame: frame, points: Self.pattern.checkPoints(frame).map { ($0.x, $0.y, $0.alpha, $0.tolerance + 4) })
    }
  }

  func runBrowser(_ browser: String, file: URL) throws -> [String: Any] {
    let executables = browser == "chromium" ? ["chromium", "chromium-browser"] : ["firefox-esr", "firefox"]
    guard executables.contains(where: { WebMTestEnvironment.which($0) != nil }) else {
      print("SKIP: \(browser) is not installed (apt-get install --no-install-recommends chromium firefox-esr)")
      throw XCTSkip("\(browser) is not installed")
    }
    guard let python = WebMTestEnvironment.which("python3") else {
      print("SKIP: python3 (the browser driver) is not installed")
      throw XCTSkip("python3 is not installed")
    }
    let spec: [String: Any] = [
      "probes": probes().map { probe in
        ["time": (Double(probe.frame) + 0.5) / Double(Self.pattern.fps),
         "points": probe.points.map { [$0.x, $0.y] }] as [String: Any]
      }
    ]
    let specFile = Self.workDirectory.appendingPathComponent("spec-\(browser).json")
    try JSONSerialization.data(withJSONObject: spec).write(to: specFile)
    let result = try runProcess(python, [Self.driver, "--browser", browser, "--video", file.path, "--spec", specFile.path, "--timeout", "90"])
    XCTAssertEqual(result.status, 0, "\(browser) driver failed: \(result.stderr)")
    guard result.status == 0,
      let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    else { throw XCTSkip("no result from \(browser)") }
    XCTAssertEqual(json["ok"] as? Bool, true, "\(browser) page error: \(json["error"] ?? "")")
    return json
  }

  func assertAlpha(_ json: [String: Any], _ browser: String, expectDuration: Double?) {
    print("\(browser): \(json["userAgent"] ?? "")")
    XCTAssertEqual(json["width"] as? Int, 320)
    XCTAssertEqual(json["height"] as? Int, 240)
    if let expectDuration {
      XCTAssertEqual(json["duration"] as? Double ?? 0, expectDuration, accuracy: 0.05, "\(browser) duration")
    }
    guard let results = json["results"] as? [[String: Any]] else {
      XCTFail("\(browser): no probe results")
      return
    }
    let probes = probes()
    XCTAssertEqual(results.count, probes.count)
    var seen: Set<UInt8> = []
    var worst = 0
    for (probe, result) in zip(probes, results) {
      let expectedTime = (Double(probe.frame) + 0.5) / Double(Self.pattern.fps)
      XCTAssertEqual(result["currentTime"] as? Double ?? -1, expectedTime, accuracy: 0.02, "\(browser) seek to frame \(probe.frame)")
      let values = result["values"] as? [[Int]] ?? []
      XCTAssertEqual(values.count, probe.points.count)
      for (point, rgba) in zip(probe.points, values) where rgba.count == 4 {
        let error = abs(rgba[3] - Int(point.alpha))
        worst = max(worst, error)
        XCTAssertLessThanOrEqual(
          error, point.tolerance,
          "\(browser) frame \(probe.frame) (t=\(result["currentTime"] ?? "?")) alpha at (\(point.x),\(point.y)) is \(rgba[3]), expected \(point.alpha) ± \(point.tolerance)")
        if error <= point.tolerance { seen.insert(point.alpha) }
      }
    }
    XCTAssertTrue(seen.isSuperset(of: [0, 128, 255]), "\(browser) read transparent, half-transparent and opaque pixels")
    if let playing = json["playing"] as? [String: Any], let corner = playing["corner"] as? [Int], corner.count == 4 {
      XCTAssertLessThanOrEqual(corner[3], 10, "\(browser): the transparent corner while playing")
    }
    print("\(browser): \(results.count) seeks, worst alpha error \(worst)")
  }

  func testChromiumReadsAlpha() throws {
    assertAlpha(try runBrowser("chromium", file: Self.seekableFile), "chromium", expectDuration: 1.5)
  }

  func testFirefoxReadsAlpha() throws {
    assertAlpha(try runBrowser("firefox", file: Self.seekableFile), "firefox", expectDuration: 1.5)
  }

  func testChromiumPlaysStreamableOutput() throws {
    // Live layout (unknown sizes, no Cues): Chromium reports duration Infinity but seeks by scanning.
    assertAlpha(try runBrowser("chromium", file: Self.liveFile), "chromium (streamable)", expectDuration: nil)
  }

  func testFirefoxPlaysStreamableOutput() throws {
    assertAlpha(try runBrowser("firefox", file: Self.liveFile), "firefox (streamable)", expectDuration: nil)
  }
}
