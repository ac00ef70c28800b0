// `backdrop serve` under load and across a restart: 50 parallel uploads with --jobs 1 (every
// accepted job right, the rest 429, memory bounded, no descriptor leak), and a server killed
// mid-job whose finished jobs survive and whose running job says it was interrupted.
import Foundation
import XCTest

final class ServeLoadTests: XCTestCase {
  var scratch: URL!
  var servers: [ServerProcess] = []

  override func setUpWithError() throws {
    scratch = try Build.temporaryDirectory()
  }

  override func tearDown() {
    for server in servers { server.stop() }
    try? FileManager.default.removeItem(at: scratch)
  }

  func startServer(_ arguments: [String], data: URL) throws -> ServerProcess {
    let server = try ServerProcess(data: data, arguments: ["--add-model", "lumakey=\(Build.lumakey)"] + arguments, scratch: scratch)
    servers.append(server)
    return server
  }

  func testFiftyParallelUploadsWithOnePipeline() throws {
    let clip = scratch.appendingPathComponent("bars.webm")
    try makeClip(clip.path, frames: 12)
    let server = try startServer(["--jobs", "1", "--queue", "4"], data: scratch.appendingPathComponent("data"))
    XCTAssertEqual(http("GET", "\(server.base)/api/health").status, 200)
    // One job first: the first pipeline opens what stays open for the process's life (the engine,
    // the plugin registry, OpenMP), which is no leak. Descriptors are counted from there.
    let warmUp = http("POST", "\(server.base)/api/jobs?name=warmup.webm&model=lumakey&outputs=webm", file: clip)
    XCTAssertEqual(warmUp.status, 201)
    if let id = warmUp.json["id"] as? String { XCTAssertEqual(waitForJob(server, id)["state"] as? String, "done") }
    let filesBefore = server.openFiles

    let count = 50
    let results = Mutex50()
    DispatchQueue.concurrentPerform(iterations: count) { index in
      let result = http("POST", "\(server.base)/api/jobs?name=clip\(index).webm&model=lumakey&outputs=webm", file: clip)
      results.set(index, result)
    }
    let all = results.values
    let accepted = all.filter { $0.status == 201 }
    let refused = all.filter { $0.status == 429 }
    XCTAssertEqual(accepted.count + refused.count, count, "only 201 and 429: \(Set(all.map(\.status)))")
    XCTAssertGreaterThanOrEqual(accepted.count, 5, "one running and four waiting at least")
    XCTAssertGreaterThan(refused.count, 0)
    for result in refused {
      XCTAssertEqual(result.json["error"] as? String, "the queue is full (4 waiting jobs): try again when a job has finished")
      XCTAssertEqual(result.header("Retry-After"), "30")
    }
    var peakRSS = server.peakRSSkB
    for result in accepted {
      let id = try XCTUnwrap(result.json["id"] as? String)
      let job = waitForJob(server, id)
      peakRSS = max(peakRSS, server.peakRSSkB)
      XCTAssertEqual(job["state"] as? String, "done", "\(id): \(job)")
      XCTAssertEqual(job["frames"] as? Int, 12)
      let file = server.folderOf(id).appendingPathComponent("transparent.webm")
      XCTAssertEqual(try ffprobe(file.path).first { $0.kind == "video" }?.frames, 12, id)
    }
    XCTAssertEqual(filesUnder(server.data.appendingPathComponent("uploads")), [], "no upload left behind")
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: server.data.appendingPathComponent("jobs").path).count, accepted.count + 1)
    // Let idle connections close before counting descriptors.
    var filesAfter = server.openFiles
    let deadline = Date().addingTimeInterval(10)
    while filesAfter > filesBefore && Date() < deadline {
      usleep(200_000)
      filesAfter = server.openFiles
    }
    print("serve load: \(accepted.count) accepted, \(refused.count) refused (429); peak RSS \(peakRSS / 1024) MiB; "
          + "open files before \(filesBefore), after \(filesAfter)")
    XCTAssertLessThanOrEqual(filesAfter, filesBefore + 2, "no descriptor leak")
    XCTAssertLessThan(peakRSS, 1_500_000, "peak RSS under 1.5 GiB")
  }

  /// A 256 MB upload goes to disk chunk by chunk: the server's peak memory barely moves.
  func testALargeUploadIsStreamedNotHeld() throws {
    let big = scratch.appendingPathComponent("big.bin")
    XCTAssertTrue(FileManager.default.createFile(atPath: big.path, contents: nil))
    let handle = try FileHandle(forWritingTo: big)
    try handle.truncate(atOffset: 256 << 20)  // zeros: not a video, refused after the upload
    try handle.close()
    let server = try startServer(["--max-upload", "1GiB"], data: scratch.appendingPathComponent("data"))
    // A small refused upload first, so that the probe's plugins are loaded before measuring.
    let small = scratch.appendingPathComponent("small.txt")
    try Data("not a video".utf8).write(to: small)
    XCTAssertEqual(http("POST", "\(server.base)/api/jobs?name=small.txt", file: small).status, 415)
    let before = server.peakRSSkB
    let result = http("POST", "\(server.base)/api/jobs?name=big.mp4", file: big, timeout: 300)
    XCTAssertEqual(result.status, 415, result.text)
    let after = server.peakRSSkB
    print("serve large upload: 256 MiB uploaded, peak RSS \(before / 1024) MiB before, \(after / 1024) MiB after")
    XCTAssertLessThan(after - before, 64 << 10, "peak RSS grew by less than 64 MiB")
    XCTAssertEqual(filesUnder(server.data).filter { !$0.hasPrefix("jobs.sqlite") }, [])
  }

  func testRestartKeepsFinishedJobsAndMarksTheRunningOneInterrupted() throws {
    let data = scratch.appendingPathComponent("data")
    let short = scratch.appendingPathComponent("short.webm"), long = scratch.appendingPathComponent("long.webm")
    try makeClip(short.path, frames: 6)
    try makeClip(long.path, frames: 900, width: 320, height: 240, fps: 30)
    let first = try startServer([], data: data)
    let doneID = try XCTUnwrap(http("POST", "\(first.base)/api/jobs?name=short.webm&model=lumakey&outputs=webm,mp4", file: short).json["id"] as? String)
    XCTAssertEqual(waitForJob(first, doneID)["state"] as? String, "done")
    let runningID = try XCTUnwrap(http("POST", "\(first.base)/api/jobs?name=long.webm&model=lumakey", file: long).json["id"] as? String)
    XCTAssertEqual(waitForJob(first, runningID, until: ["running"])["state"] as? String, "running")
    first.stop(signal: SIGKILL)

    let second = try startServer([], data: data)
    let jobs = http("GET", "\(second.base)/api/jobs").json["jobs"] as? [[String: Any]] ?? []
    XCTAssertEqual(jobs.compactMap { $0["id"] as? String }, [runningID, doneID], "newest first")
    let done = http("GET", "\(second.base)/api/jobs/\(doneID)").json
    XCTAssertEqual(done["state"] as? String, "done")
    XCTAssertEqual(done["percent"] as? Double, 100)
    for kind in ["webm", "mp4"] {
      let file = http("GET", "\(second.base)/api/jobs/\(doneID)/files/\(kind)?download=1")
      XCTAssertEqual(file.status, 200, kind)
      let local = scratch.appendingPathComponent("after-restart.\(kind)")
      try file.body.write(to: local)
      XCTAssertEqual(try ffprobe(local.path).first { $0.kind == "video" }?.frames, 6, kind)
    }
    let interrupted = http("GET", "\(second.base)/api/jobs/\(runningID)").json
    XCTAssertEqual(interrupted["state"] as? String, "interrupted")
    XCTAssertEqual(interrupted["message"] as? String,
                   "interrupted: the server stopped while this job was running; upload the video again")
    XCTAssertEqual(filesUnder(second.folderOf(runningID)), ["input"], "half-written outputs removed")
    XCTAssertEqual(http("GET", "\(second.base)/api/jobs/\(runningID)/files/webm").status, 404)

    // SIGTERM (or Ctrl-C) mid-job: the server ends at once and records the job as interrupted.
    let thirdID = try XCTUnwrap(http("POST", "\(second.base)/api/jobs?name=again.webm&model=lumakey", file: long).json["id"] as? String)
    let queuedID = try XCTUnwrap(http("POST", "\(second.base)/api/jobs?name=later.webm&model=lumakey", file: short).json["id"] as? String)
    XCTAssertEqual(waitForJob(second, thirdID, until: ["running"])["state"] as? String, "running")
    let stopping = Date()
    second.stop(signal: SIGTERM)
    XCTAssertLessThan(Date().timeIntervalSince(stopping), 5, "SIGTERM ends the server promptly")
    XCTAssertEqual(second.process.terminationStatus, 0)
    XCTAssertTrue(second.log.contains("unfinished jobs are marked interrupted"), second.log)
    let third = try startServer([], data: data)
    XCTAssertEqual(http("GET", "\(third.base)/api/jobs/\(thirdID)").json["state"] as? String, "interrupted")
    XCTAssertEqual(http("GET", "\(third.base)/api/jobs/\(queuedID)").json["message"] as? String,
                   "interrupted: the server stopped before this job started; upload the video again")
    XCTAssertEqual(http("GET", "\(third.base)/api/jobs/\(doneID)/files/webm").status, 200)
  }
}

/// Results of parallel requests, by index.
final class Mutex50: @unchecked Sendable {
  private let lock = NSLock()
  private var results: [Int: HTTPResult] = [:]
  func set(_ index: Int, _ result: HTTPResult) { lock.lock(); results[index] = result; lock.unlock() }
  var values: [HTTPResult] { lock.lock(); defer { lock.unlock() }; return results.keys.sorted().map { results[$0]! } }
}
