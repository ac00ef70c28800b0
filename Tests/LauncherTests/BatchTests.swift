// `backdrop compose --batch LIST --out-dir DIR`: one output per line, failures retried once and
// reported, a rerun skips what is finished, and a summary file says what happened.
import Foundation
import XCTest

final class BatchTests: XCTestCase {
  var directory: URL!

  override func setUpWithError() throws { directory = try Launcher.temporaryDirectory() }
  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

  func batch(_ more: [String] = []) throws -> RunResult {
    try runProgram(Launcher.executable, ["compose", "--batch", path("list.txt"), "--out-dir", path("out")] + ScaleFixture.modelArguments + more,
                   environment: Launcher.environment(cache: directory.appendingPathComponent("cache")))
  }

  func summary() throws -> [String: Any] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path("out/batch-summary.json")))
    return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
  }

  /// A list of photos with --batch-format png: one cutout picture each; a video in the list fails
  /// its line with compose's reason (a video's PNG output is a numbered sequence).
  func testBatchOfPhotosWritesOneCutoutEach() throws {
    for name in ["a", "b"] {
      try gstLaunch(["videotestsrc", "num-buffers=1", "pattern=smpte", "!", "video/x-raw,width=160,height=96", "!", "jpegenc", "!",
                     "filesink", "location=\(path("\(name).jpg"))"])
    }
    try ScaleFixture.makeClip(path("clip.webm"), frames: 3)
    try "a.jpg\nb.jpg\nclip.webm\n".write(toFile: path("list.txt"), atomically: true, encoding: .utf8)
    let result = try batch(["--batch-format", "png"])
    XCTAssertEqual(result.status, 70, result.stderr)
    for name in ["a", "b"] {
      let probe = try runProgram(which("ffprobe") ?? "/usr/bin/ffprobe",
                                 ["-v", "error", "-show_entries", "stream=width,height,pix_fmt", "-of", "csv=p=0", path("out/\(name).png")])
      XCTAssertEqual(probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "160,96,rgba", name)
    }
    let items = try XCTUnwrap(try summary()["items"] as? [[String: Any]])
    XCTAssertEqual(items.map { $0["status"] as? String }, ["done", "done", "failed"])
    XCTAssertEqual(items[2]["exit_status"] as? Int, 64)
    XCTAssertTrue((items[2]["error"] as? String ?? "").contains("PNG output of a video is a frame sequence"), "\(items[2])")
  }

  func testBatchIsResumableRetriesOnceAndSummarises() throws {
    try ScaleFixture.makeClip(path("first.webm"), frames: 10)
    try ScaleFixture.makeClip(path("second.webm"), frames: 6)
    try Data("not a video".utf8).write(to: URL(fileURLWithPath: path("broken.webm")))
    try "first.webm\n# a comment\n\nbroken.webm\n\(path("second.webm"))\n".write(toFile: path("list.txt"), atomically: true, encoding: .utf8)

    let run = try batch()
    XCTAssertEqual(run.status, 70, run.stderr)
    XCTAssertTrue(run.stderr.contains("broken.webm: retrying"), run.stderr)
    XCTAssertTrue(run.stderr.contains("batch: 2 done, 0 skipped, 1 failed of 3"), run.stderr)
    XCTAssertEqual(try ffprobe(path("out/first.webm")).video?.frames, 10)
    XCTAssertEqual(try ffprobe(path("out/second.webm")).video?.frames, 6)
    XCTAssertFalse(FileManager.default.fileExists(atPath: path("out/broken.webm")))
    var items = try XCTUnwrap(try summary()["items"] as? [[String: Any]])
    XCTAssertEqual(items.map { $0["status"] as? String }, ["done", "failed", "done"])
    XCTAssertEqual(items.map { $0["line"] as? Int }, [1, 4, 5])
    XCTAssertEqual(items[1]["attempts"] as? Int, 2, "a failure is retried once")
    XCTAssertEqual(items[1]["exit_status"] as? Int, 65)
    XCTAssertTrue((items[1]["error"] as? String ?? "").contains("is not a media file"), "\(items[1])")

    // A rerun skips the finished outputs (untouched) and tries the failed one again.
    let modified = try FileManager.default.attributesOfItem(atPath: path("out/first.webm"))[.modificationDate] as? Date
    let again = try batch()
    XCTAssertEqual(again.status, 70)
    items = try XCTUnwrap(try summary()["items"] as? [[String: Any]])
    XCTAssertEqual(items.map { $0["status"] as? String }, ["skipped", "failed", "skipped"])
    XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: path("out/first.webm"))[.modificationDate] as? Date, modified)

    // Fixed input: the rerun finishes the batch.
    try FileManager.default.removeItem(atPath: path("broken.webm"))
    try ScaleFixture.makeClip(path("broken.webm"), frames: 4)
    let fixed = try batch()
    XCTAssertEqual(fixed.status, 0, fixed.stderr)
    XCTAssertEqual(try summary()["done"] as? Int, 1)
    XCTAssertEqual(try summary()["skipped"] as? Int, 2)
    XCTAssertEqual(try ffprobe(path("out/broken.webm")).video?.frames, 4)
  }

  func testBatchRefusesCollidingNamesAndAnInputBesideIt() throws {
    try "a/clip.webm\nb/clip.mp4\n".write(toFile: path("list.txt"), atomically: true, encoding: .utf8)
    let colliding = try batch()
    XCTAssertEqual(colliding.status, 64)
    XCTAssertTrue(colliding.stderr.contains("lines 1 and 2 would both write"), colliding.stderr)
    let both = try runProgram(Launcher.executable, ["compose", path("x.webm"), "--batch", path("list.txt"), "--out-dir", path("out")])
    XCTAssertEqual(both.status, 64)
    XCTAssertTrue(both.stderr.contains("leave out INPUT and -o"), both.stderr)
  }
}
