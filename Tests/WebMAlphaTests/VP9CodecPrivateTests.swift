// webmalphamux writes the CodecPrivate of V_VP9 tracks (Matroska codec mapping: profile, level,
// bit depth, chroma subsampling as ID-length-value triples), read back with mkvinfo's hex dump.
import XCTest

final class VP9CodecPrivateTests: XCTestCase {
  var directory: URL!

  override func setUpWithError() throws {
    XCTAssertTrue(WebMTestEnvironment.ready)
    directory = try WebMTestEnvironment.temporaryDirectory("codecprivate")
  }

  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  /// Muxes three frames of `source ! encoder` and returns the CodecPrivate bytes mkvinfo shows.
  func codecPrivate(_ source: String, encoder: String) throws -> String {
    guard let mkvinfo = WebMTestEnvironment.which("mkvinfo") else {
      print("SKIP: mkvinfo is not installed (apt-get install mkvtoolnix)")
      throw XCTSkip("mkvinfo is not installed")
    }
    let path = directory.appendingPathComponent("\(UUID().uuidString).webm").path
    let outcome = runPipeline("videotestsrc num-buffers=3 ! \(source) ! \(encoder) ! webmalphamux ! filesink location=\(path)")
    XCTAssertNil(outcome.error)
    let result = try runProcess(mkvinfo, ["-X", path])
    XCTAssertEqual(result.status, 0, result.stderr)
    let line = result.stdout.split(separator: "\n").first { $0.contains("Codec's private data") }
    guard let line, let marker = line.range(of: "hexdump ") else { return "" }
    return line[marker.upperBound...].trimmingCharacters(in: .whitespaces)
  }

  func testAlphaStreamIsProfile0Level2EightBit420() throws {
    // 320×240 is above level 1.1's 73,728 luma samples: level 2 (0x14).
    XCTAssertEqual(
      try codecPrivate("video/x-raw,format=A420,width=320,height=240,framerate=30/1", encoder: "vp9alphaenc"),
      "01 01 00 02 01 14 03 01 08 04 01 00")
  }

  func testLevelFollowsTheSampleRate() throws {
    // 1280×720 fits level 3.1's picture size, but 60 fps is 55 M samples/s, above its 36.9 M: level 4 (0x28).
    XCTAssertEqual(
      try codecPrivate("video/x-raw,format=I420,width=1280,height=720,framerate=60/1", encoder: "vp9enc deadline=1 cpu-used=8"),
      "01 01 00 02 01 28 03 01 08 04 01 00")
  }

  func testProfile1Is444() throws {
    XCTAssertEqual(
      try codecPrivate("video/x-raw,format=Y444,width=160,height=96,framerate=10/1", encoder: "vp9enc deadline=1 cpu-used=8"),
      "01 01 01 02 01 0a 03 01 08 04 01 03")
  }
}
