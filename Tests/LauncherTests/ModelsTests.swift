// backdrop models: the registry listing, and downloads from a local HTTP server on 127.0.0.1
// (range_server.py) that can cut the first transfer short, with resume, size and checksum checks.
import Foundation
import XCTest

final class ModelsTests: XCTestCase {
  var directory: URL!
  var cache: URL { directory.appendingPathComponent("cache") }
  var served: URL { directory.appendingPathComponent("served") }
  var models: URL { directory.appendingPathComponent("models") }
  var serverLog: URL { directory.appendingPathComponent("requests.log") }
  var server: Process?
  var port = 0
  var tiny = Data()
  var tinySHA = ""

  override func setUpWithError() throws {
    directory = try Launcher.temporaryDirectory()
    try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
    // A small valid safetensors file of exactly 300,000 bytes (length, header, data).
    let header = Data(#"{"__metadata__":{"made_by":"LauncherTests"}}"#.utf8)
    var bytes = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Data($0) } + header
    bytes += Data((0..<(300_000 - bytes.count)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) })
    tiny = bytes
    try serve(tiny, at: "org/tiny/resolve/main/model.safetensors")
    try serve(Data("this is not a model\n".utf8), at: "org/text/resolve/main/model.safetensors")
    tinySHA = try sha256sum(tiny)
    let textSHA = try sha256sum(Data("this is not a model\n".utf8))
    let registry: [String: Any] = [
      "base_url": "http://127.0.0.1:9/unused",
      "models": [
        ["name": "tiny", "repo": "org/tiny", "file": "model.safetensors", "backbone": "test", "native_size": [64, 64],
         "bytes": tiny.count, "sha256": tinySHA, "patch_order": "legacy"],
        ["name": "tiny-badsum", "repo": "org/tiny", "file": "model.safetensors", "backbone": "test",
         "native_size": [64, 64], "bytes": tiny.count, "sha256": String(repeating: "0", count: 64)],
        ["name": "tiny-nosum", "repo": "org/tiny", "file": "model.safetensors", "native_size": [64, 64],
         "bytes": NSNull(), "sha256": NSNull()],
        ["name": "text", "repo": "org/text", "file": "model.safetensors", "native_size": [64, 64], "sha256": textSHA],
        ["name": "gone", "repo": "org/gone", "file": "model.safetensors", "native_size": [64, 64]],
      ],
    ]
    try JSONSerialization.data(withJSONObject: registry).write(to: models.appendingPathComponent("registry.json"))
  }

  override func tearDown() {
    if let server, server.isRunning {
      server.terminate()
      server.waitUntilExit()
    }
    try? FileManager.default.removeItem(at: directory)
  }

  func serve(_ data: Data, at path: String) throws {
    let url = served.appendingPathComponent(path)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try data.write(to: url)
  }

  func sha256sum(_ data: Data) throws -> String {
    let file = directory.appendingPathComponent("hash-\(UUID().uuidString)")
    try data.write(to: file)
    defer { try? FileManager.default.removeItem(at: file) }
    return String(try runProgram("/usr/bin/sha256sum", [file.path]).stdout.prefix(64))
  }

  /// Starts range_server.py; `cutFirst` bytes end the first plain GET of each file.
  func startServer(cutFirst: Int? = nil) throws {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("range_server.py").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = [script, served.path, serverLog.path] + (cutFirst.map { ["--cut-first", "\($0)"] } ?? [])
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    server = process
    var text = ""
    while !text.contains("\n") {
      let chunk = out.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      text += String(decoding: chunk, as: UTF8.self)
    }
    port = try XCTUnwrap(Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), "server port")
  }

  func backdrop(_ arguments: [String]) throws -> RunResult {
    var extra = ["BACKDROP_MODELS": models.path]
    if port > 0 { extra["BACKDROP_MODEL_BASE_URL"] = "http://127.0.0.1:\(port)" }
    return try runProgram(Launcher.executable, arguments, environment: Launcher.environment(cache: cache, extra: extra))
  }

  var downloaded: URL { cache.appendingPathComponent("backdrop/models/tiny.safetensors") }

  func requests() -> [String] {
    ((try? String(contentsOf: serverLog, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
  }

  // MARK: - Tests

  func testUnreachableHostIsSaidSo() throws {
    // No server: the registry's base URL (port 9 on this machine) refuses the connection.
    let result = try backdrop(["models", "fetch", "tiny"])
    XCTAssertEqual(result.status, 69, result.stderr)
    XCTAssertTrue(result.stderr.contains("could not reach 127.0.0.1 to download tiny ("), result.stderr)
    XCTAssertTrue(result.stderr.contains("check the network connection"), result.stderr)
    XCTAssertFalse(result.stderr.contains("interrupted"), "a download that never started was not interrupted: \(result.stderr)")
  }

  func testListSaysWhatSelfieIsFor() throws {
    let result = try backdrop(["models", "list"])
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertTrue(result.stdout.contains("selfie: a head-and-shoulders model"), result.stdout)
    XCTAssertTrue(result.stdout.contains("backdrop models fetch lite"), result.stdout)
    let json = try backdrop(["models", "list", "--json"])
    let selfie = jsonEvents(json.stdout).first { $0["name"] as? String == "selfie" }
    XCTAssertTrue((selfie?["scope"] as? String)?.contains("misses full-body and distant people") == true)
  }

  func testListShowsTheRegistryAndSelfie() throws {
    let result = try backdrop(["models", "list", "--json"])
    XCTAssertEqual(result.status, 0, result.stderr)
    let entries = jsonEvents(result.stdout)
    XCTAssertEqual(entries.map { $0["name"] as? String }, ["selfie", "tiny", "tiny-badsum", "tiny-nosum", "text", "gone"])
    XCTAssertEqual(entries[0]["local"] as? Bool, true)
    XCTAssertEqual(entries[0]["width"] as? Int, 256)
    XCTAssertEqual(entries[1]["bytes"] as? Int, tiny.count)
    XCTAssertEqual(entries[1]["sha256"] as? String, tinySHA)
    XCTAssertEqual(entries[1]["patch_order"] as? String, "legacy")
    XCTAssertEqual(entries[1]["repository"] as? String, "org/tiny")
    XCTAssertEqual(entries[1]["installed"] as? Bool, false)

    let text = try backdrop(["models", "list"])
    XCTAssertEqual(text.status, 0)
    let tinyLine = try XCTUnwrap(text.stdoutLines.first { $0.hasPrefix("tiny ") })
    XCTAssertTrue(tinyLine.contains("64x64"), tinyLine)
    XCTAssertTrue(tinyLine.contains("300.0 kB"), tinyLine)
    XCTAssertTrue(tinyLine.hasSuffix("not downloaded"), tinyLine)
  }

  func testTheRepositoryRegistryListsOfficialWeights() throws {
    let result = try runProgram(Launcher.executable, ["models", "list", "--json"], environment: Launcher.environment(cache: cache))
    XCTAssertEqual(result.status, 0, result.stderr)
    let entries = jsonEvents(result.stdout)
    let names = entries.compactMap { $0["name"] as? String }
    XCTAssertEqual(names.first, "selfie")
    XCTAssertTrue(names.contains("general"), "\(names)")
    let lite = try XCTUnwrap(entries.first { $0["name"] as? String == "lite" }, "\(names)")
    XCTAssertEqual(lite["backbone"] as? String, "swin_v1_t")
    XCTAssertEqual(lite["repository"] as? String, "ZhengPeng7/BiRefNet_lite")
    XCTAssertEqual(lite["width"] as? Int, 1024)
    XCTAssertEqual(lite["height"] as? Int, 1024)
    XCTAssertEqual(lite["patch_order"] as? String, "legacy")
    let wide = try XCTUnwrap(entries.first { $0["name"] as? String == "lite-2k" })
    XCTAssertEqual(wide["width"] as? Int, 2560)
    XCTAssertEqual(wide["height"] as? Int, 1440)
  }

  func testFetchResumesAnInterruptedDownload() throws {
    try startServer(cutFirst: 100_000)
    let first = try backdrop(["models", "fetch", "tiny"])
    XCTAssertEqual(first.status, 74, first.stderr)
    XCTAssertTrue(first.stderr.contains("download of tiny interrupted after 100.0 kB of 300.0 kB"), first.stderr)
    XCTAssertTrue(first.stderr.contains("run the same command again to resume"), first.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: downloaded.path), "nothing under the final name")
    let part = downloaded.appendingPathExtension("part")
    XCTAssertEqual((try FileManager.default.attributesOfItem(atPath: part.path)[.size] as? NSNumber)?.intValue, 100_000)

    let second = try backdrop(["models", "fetch", "tiny", "--json"])
    XCTAssertEqual(second.status, 0, second.stderr)
    let events = jsonEvents(second.stdout.split(separator: "\n").filter { $0.hasPrefix("{") }.joined(separator: "\n"))
    XCTAssertEqual(events.first?["resume_from"] as? Int, 100_000)
    XCTAssertEqual(events.last?["event"] as? String, "done")
    XCTAssertEqual(events.last?["sha256"] as? String, tinySHA)
    XCTAssertEqual(events.last?["verified"] as? Bool, true)
    XCTAssertEqual(second.stdoutLines.last, downloaded.path, "prints where the model is")
    XCTAssertEqual(try Data(contentsOf: downloaded), tiny, "the file, byte for byte")
    XCTAssertFalse(FileManager.default.fileExists(atPath: part.path))
    XCTAssertEqual(try String(contentsOf: downloaded.appendingPathExtension("sha256"), encoding: .utf8),
                   "\(tinySHA)  tiny.safetensors\n", "the digest is recorded beside the file")
    XCTAssertEqual(requests(), [
      "GET /org/tiny/resolve/main/model.safetensors - 200",
      "GET /org/tiny/resolve/main/model.safetensors bytes=100000- 206",
    ])

    let path = try backdrop(["models", "path", "tiny"])
    XCTAssertEqual(path.status, 0)
    XCTAssertEqual(path.stdout, downloaded.path + "\n")
    let again = try backdrop(["models", "fetch", "tiny"])
    XCTAssertEqual(again.status, 0)
    XCTAssertTrue(again.stderr.contains("already downloaded"))
    XCTAssertEqual(requests().count, 2, "no new request")
  }

  func testChecksumMismatchRemovesTheDownload() throws {
    try startServer()
    let result = try backdrop(["models", "fetch", "tiny-badsum"])
    XCTAssertEqual(result.status, 65, result.stderr)
    XCTAssertTrue(result.stderr.contains("checksum mismatch for tiny-badsum: expected sha256 \(String(repeating: "0", count: 64)), got \(tinySHA)"), result.stderr)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache.appendingPathComponent("backdrop/models").path), [], "nothing kept")
  }

  func testWithoutAChecksumTheSizeIsCheckedAndTheDigestPrinted() throws {
    try startServer()
    let result = try backdrop(["models", "fetch", "tiny-nosum"])
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertTrue(result.stderr.contains("sha256 \(tinySHA) (the registry has no checksum to compare)"), result.stderr)
  }

  func testSizeFarFromThePublishedOneIsRejected() throws {
    let registry: [String: Any] = ["models": [
      ["name": "approx", "repo": "org/tiny", "file": "model.safetensors", "native_width": 64, "native_height": 64,
       "size_bytes": NSNull(), "sha256": NSNull(), "approx_size_mb": 178]
    ]]
    try JSONSerialization.data(withJSONObject: registry).write(to: models.appendingPathComponent("registry.json"))
    try startServer()
    let result = try backdrop(["models", "fetch", "approx"])
    XCTAssertEqual(result.status, 65, result.stderr)
    XCTAssertTrue(result.stderr.contains("approx: downloaded 300.0 kB, but the registry says about 178 MB"), result.stderr)
  }

  func testAFileThatIsNotAModelIsRejected() throws {
    try startServer()
    let result = try backdrop(["models", "fetch", "text"])
    XCTAssertEqual(result.status, 65, result.stderr)
    XCTAssertTrue(result.stderr.contains("is not a model file the engine loads"), result.stderr)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache.appendingPathComponent("backdrop/models").path), [])
  }

  func testMissingOnTheServer() throws {
    try startServer()
    let result = try backdrop(["models", "fetch", "gone"])
    XCTAssertEqual(result.status, 74, result.stderr)
    XCTAssertTrue(result.stderr.contains("HTTP 404 from http://127.0.0.1:\(port)/org/gone/resolve/main/model.safetensors"), result.stderr)
  }

  func testUnknownNameAndModelNotDownloaded() throws {
    let unknown = try backdrop(["models", "fetch", "nonesuch"])
    XCTAssertEqual(unknown.status, 69)
    XCTAssertTrue(unknown.stderr.contains("unknown model 'nonesuch': known models are selfie, tiny"), unknown.stderr)
    let path = try backdrop(["models", "path", "tiny"])
    XCTAssertEqual(path.status, 69)
    XCTAssertTrue(path.stderr.contains("model 'tiny' is not downloaded yet: run `backdrop models fetch tiny`"), path.stderr)
    let compose = try backdrop(["compose", "/dev/null", "-o", directory.appendingPathComponent("o.webm").path, "--model", "tiny"])
    XCTAssertEqual(compose.status, 69, "a name works where a model is taken, and says what to do")
    XCTAssertTrue(compose.stderr.contains("run `backdrop models fetch tiny`"), compose.stderr)
  }

  /// A fetched model works by name in compose (the luma-key model served as a registry entry).
  func testAFetchedModelWorksByName() throws {
    let lumakey = try Data(contentsOf: URL(fileURLWithPath: Launcher.designedModel("lumakey")))
    try serve(lumakey, at: "designed/lumakey/resolve/main/lumakey.pt")
    let registry: [String: Any] = ["models": [
      ["name": "lumakey", "repo": "designed/lumakey", "file": "lumakey.pt", "native_size": [64, 64],
       "bytes": lumakey.count, "sha256": try sha256sum(lumakey)]
    ]]
    try JSONSerialization.data(withJSONObject: registry).write(to: models.appendingPathComponent("registry.json"))
    try startServer()
    XCTAssertEqual(try backdrop(["models", "fetch", "lumakey", "-q"]).status, 0)
    let clip = directory.appendingPathComponent("bars.webm").path
    try ComposeTests.makeClip(clip, frames: 5, width: 160, height: 96, fps: 10)
    let output = directory.appendingPathComponent("named.webm").path
    let result = try backdrop(["compose", clip, "-o", output, "--model", "lumakey", "--json"])
    XCTAssertEqual(result.status, 0, result.stderr)
    let start = try XCTUnwrap(jsonEvents(result.stdout).first)
    let pipeline = try XCTUnwrap(start["pipeline"] as? String)
    XCTAssertTrue(pipeline.contains("model-file=\"\(cache.path)/backdrop/models/lumakey.pt\" inference-width=64 inference-height=64"), pipeline)
    XCTAssertEqual(try ffprobe(output).video?.frames, 5)
  }
}
