// backdrop models list | fetch NAME | path NAME: the registry, downloads into the per-user cache
// with progress, resume (HTTP Range) and size and SHA-256 checks.
import ArgumentParser
import CGStreamer
import Foundation
#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif

struct Models: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "List, download and locate matting models.",
    discussion: """
      The registry is models/registry.json (official BiRefNet weights) plus `selfie`, the offline \
      default made by scripts/setup-models.sh. Downloads go to $XDG_CACHE_HOME/backdrop/models; \
      BACKDROP_MODEL_BASE_URL replaces the download server (mirrors, tests). A model name works \
      wherever a model is taken (--model NAME).
      """,
    subcommands: [List.self, Fetch.self, Path.self])

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the models the registry knows and which are here.")

    @Flag(name: .long, help: "One JSON object per model on stdout.")
    var json = false

    func run() throws {
      try reportingErrors {
        let registry = try ModelRegistry.load()
        if !json { print("name                    backbone                input       size        here") }
        for entry in registry.entries {
          let path = registry.installedPath(entry)
          if json {
            var object: [String: Any] = [
              "name": entry.name, "file": entry.file, "width": entry.width, "height": entry.height,
              "local": entry.local, "installed": path != nil,
            ]
            object["repository"] = entry.repository
            object["backbone"] = entry.backbone
            object["bytes"] = entry.bytes
            object["sha256"] = entry.sha256
            object["patch_order"] = entry.patchOrder
            object["path"] = path?.path
            if entry.name == "selfie" { object["scope"] = ModelRegistry.selfieScope }
            Console.event(object)
          } else {
            let size = entry.bytes.map(formatBytes) ?? entry.approximateMB.map { "~\(Int($0)) MB" } ?? (entry.local ? "local" : "?")
            let here = path?.path ?? (entry.local ? "not set up (scripts/setup-models.sh)" : "not downloaded")
            let backbone = String((entry.backbone ?? "?").prefix(23))
            print(
              entry.name.padding(toLength: 23, withPad: " ", startingAt: 0) + " "
                + backbone.padding(toLength: 23, withPad: " ", startingAt: 0) + " "
                + "\(entry.width)x\(entry.height)".padding(toLength: 11, withPad: " ", startingAt: 0) + " "
                + size.padding(toLength: 11, withPad: " ", startingAt: 0) + " " + here)
          }
        }
        if !json && registry.entry("selfie") != nil { print("\nselfie: \(ModelRegistry.selfieScope)") }
      }
    }
  }

  struct Path: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print where a model's file is (fails when it is not here).")

    @Argument(help: "Model name.")
    var name: String

    func run() throws {
      try reportingErrors { print(try ResolvedModel.resolve(name).path) }
    }
  }

  struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Download a model into the cache (resumes an interrupted download).")

    @Argument(help: "Model name (see `backdrop models list`).")
    var name: String

    @Flag(name: .shortAndLong, help: "No progress.")
    var quiet = false

    @Flag(name: .long, help: "Progress as JSON events on stdout.")
    var json = false

    func run() throws {
      try reportingErrors(json: json) {
        let registry = try ModelRegistry.load()
        guard let entry = registry.entry(name) else {
          throw LauncherError.unavailable(
            "unknown model '\(name)': known models are \(registry.entries.map(\.name).joined(separator: ", "))")
        }
        if entry.local {
          guard let path = registry.installedPath(entry) else {
            throw LauncherError.unavailable("'\(name)' is not downloaded but made on this machine: run scripts/setup-models.sh")
          }
          print(path.path)
          return
        }
        if FileManager.default.fileExists(atPath: entry.cachePath.path) {
          if !quiet && !json { Console.note("\(name): already downloaded") }
          print(entry.cachePath.path)
          return
        }
        guard let url = entry.downloadURL(base: registry.baseURL) else {
          throw LauncherError.unavailable("the registry (\(registry.source)) gives no download address for '\(name)'")
        }
        try Download(entry: entry, url: url, quiet: quiet, json: json).run()
        print(entry.cachePath.path)
      }
    }
  }
}

/// One model download: into FILE.part beside the destination, resumed with a Range request when
/// that exists, checked for size and SHA-256, then renamed.
final class Download: NSObject, URLSessionDataDelegate, @unchecked Sendable {
  let entry: ModelEntry
  let url: URL
  let quiet: Bool
  let json: Bool
  let destination: URL
  let partial: URL

  private var handle: FileHandle?
  private var offset: Int64 = 0        // bytes already in the .part file when this request started
  private var received: Int64 = 0      // bytes of this request
  private var total: Int64?            // whole file, from the headers
  private var failure: String?
  private var gotResponse = false  // false after a failure: the server was never reached
  private var lastReport = Date.distantPast
  private let start = Date()
  private let finished = DispatchSemaphore(value: 0)

  init(entry: ModelEntry, url: URL, quiet: Bool, json: Bool) {
    self.entry = entry
    self.url = url
    self.quiet = quiet
    self.json = json
    destination = entry.cachePath
    partial = entry.cachePath.appendingPathExtension("part")
  }

  func run() throws {
    do {
      try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
    } catch {
      throw LauncherError.cannotCreate("cannot create \(destination.deletingLastPathComponent().path): \(error.localizedDescription)")
    }
    if !FileManager.default.fileExists(atPath: partial.path) {
      _ = FileManager.default.createFile(atPath: partial.path, contents: nil)
    }
    guard let handle = FileHandle(forWritingAtPath: partial.path) else {
      throw LauncherError.cannotCreate("cannot write \(partial.path)")
    }
    self.handle = handle
    offset = Int64(handle.seekToEndOfFile())
    var request = URLRequest(url: url)
    if offset > 0 {
      request.setValue("bytes=\(offset)-", forHTTPHeaderField: "Range")
      note("resuming \(entry.name) at \(formatBytes(offset))")
    }
    if json { Console.event(["event": "start", "model": entry.name, "url": url.absoluteString, "resume_from": offset]) }
    let session = URLSession(configuration: .ephemeral, delegate: self, delegateQueue: nil)
    session.dataTask(with: request).resume()
    finished.wait()
    session.finishTasksAndInvalidate()
    try? handle.close()
    if showLine { Console.clearStatus() }

    let have = fileSize(partial)
    if let failure, !gotResponse {
      let host = url.host ?? url.absoluteString
      let kept = have > 0 ? "; the \(formatBytes(have)) downloaded before are kept for a later resume" : ""
      throw LauncherError.unavailable(
        "could not reach \(host) to download \(entry.name) (\(failure)): check the network connection "
          + "or proxy and run the same command again\(kept)")
    }
    if let failure {
      let known = (entry.bytes ?? total).map { " of \(formatBytes($0))" } ?? ""
      throw LauncherError.io(
        "download of \(entry.name) interrupted after \(formatBytes(have))\(known) (\(failure)); "
          + "run the same command again to resume")
    }
    if let expected = entry.bytes ?? total, have != expected {
      if have < expected {
        throw LauncherError.io(
          "download of \(entry.name) interrupted after \(formatBytes(have)) of \(formatBytes(expected)); "
            + "run the same command again to resume")
      }
      try? FileManager.default.removeItem(at: partial)
      throw LauncherError.data("\(entry.name): downloaded \(have) bytes, expected \(expected); the file was removed")
    }
    if entry.bytes == nil, let approximate = entry.approximateMB, approximate > 0,
      abs(Double(have) / 1e6 - approximate) > approximate * 0.1
    {
      try? FileManager.default.removeItem(at: partial)
      throw LauncherError.data(
        "\(entry.name): downloaded \(formatBytes(have)), but the registry says about \(Int(approximate)) MB; the file was removed")
    }
    let digest = try sha256(of: partial)
    if let expected = entry.sha256 {
      guard digest == expected else {
        try? FileManager.default.removeItem(at: partial)
        throw LauncherError.data(
          "checksum mismatch for \(entry.name): expected sha256 \(expected), got \(digest); the download was removed")
      }
    }
    do {
      try ResolvedModel.checkModelFile(partial.path, sniff: true)
    } catch let error as LauncherError {
      try? FileManager.default.removeItem(at: partial)
      throw LauncherError.data("\(entry.name): \(error.message); the download was removed")
    }
    // The digest of what was downloaded, beside it (the registry may not pin one).
    try? Data("\(digest)  \(destination.lastPathComponent)\n".utf8)
      .write(to: destination.appendingPathExtension("sha256"))
    guard rename(partial.path, destination.path) == 0 else {
      throw LauncherError.cannotCreate("cannot move the download to \(destination.path): \(String(cString: strerror(errno)))")
    }
    let elapsed = Date().timeIntervalSince(start)
    if json {
      Console.event(["event": "done", "model": entry.name, "path": destination.path, "bytes": have,
                     "sha256": digest, "verified": entry.sha256 != nil, "elapsed_s": elapsed])
    } else {
      note("\(entry.name): \(formatBytes(have)) in \(String(format: "%.1f", elapsed)) s, sha256 \(digest)"
             + (entry.sha256 == nil ? " (the registry has no checksum to compare)" : " (verified)"))
    }
  }

  private var showLine: Bool { !quiet && !json && Console.stderrIsTerminal }

  private func note(_ text: String) { if !quiet && !json { Console.note("backdrop: \(text)") } }

  private func fileSize(_ url: URL) -> Int64 {
    ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? NSNumber)?.int64Value ?? 0
  }

  // MARK: URLSession

  func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                  completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
    gotResponse = true
    guard let http = response as? HTTPURLResponse else {
      failure = "not an HTTP response"
      completionHandler(.cancel)
      return
    }
    switch http.statusCode {
    case 206:
      // Content-Range: bytes START-END/TOTAL
      let range = http.value(forHTTPHeaderField: "Content-Range") ?? ""
      let numbers = range.split(whereSeparator: { !$0.isNumber }).compactMap { Int64($0) }
      if numbers.count == 3, numbers[0] == offset {
        total = numbers[2]
      } else {
        failure = "the server resumed at the wrong place (\(range))"
        completionHandler(.cancel)
        return
      }
    case 200:
      // No resume: start over.
      handle?.truncateFile(atOffset: 0)
      offset = 0
      if http.expectedContentLength > 0 { total = http.expectedContentLength }
    case 416 where offset > 0 && entry.bytes == offset:
      completionHandler(.cancel)  // already complete
      return
    default:
      failure = "HTTP \(http.statusCode) from \(url.absoluteString)"
      completionHandler(.cancel)
      return
    }
    completionHandler(.allow)
  }

  func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
    handle?.write(data)
    received += Int64(data.count)
    guard Date().timeIntervalSince(lastReport) >= 0.25 else { return }
    lastReport = Date()
    let have = offset + received
    let expected = entry.bytes ?? total
    let rate = Double(received) / max(Date().timeIntervalSince(start), 0.001)
    if json {
      var event: [String: Any] = ["event": "progress", "bytes": have, "bytes_per_s": Int(rate)]
      if let expected { event["total_bytes"] = expected; event["percent"] = Double(have) * 100 / Double(expected) }
      Console.event(event)
    } else if showLine {
      let percent = expected.map { String(format: "%5.1f%%  ", Double(have) * 100 / Double($0)) } ?? ""
      let eta = expected.map { rate > 0 ? formatDuration(Double($0 - have) / rate) : "--:--" } ?? "--:--"
      Console.status(
        "\(entry.name)  \(percent)\(formatBytes(have))\(expected.map { " / \(formatBytes($0))" } ?? "")  "
          + "\(formatBytes(Int64(rate)))/s  ETA \(eta)")
    }
  }

  func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
    if let error, failure == nil, (error as NSError).code != NSURLErrorCancelled {
      failure = error.localizedDescription
    }
    finished.signal()
  }
}

/// SHA-256 of a file, as lowercase hex (GLib's implementation).
func sha256(of url: URL) throws -> String {
  guard let handle = FileHandle(forReadingAtPath: url.path) else { throw LauncherError.noInput("cannot read \(url.path)") }
  defer { try? handle.close() }
  let checksum = g_checksum_new(G_CHECKSUM_SHA256)
  defer { g_checksum_free(checksum) }
  while true {
    let chunk = handle.readData(ofLength: 4 << 20)
    if chunk.isEmpty { break }
    chunk.withUnsafeBytes { g_checksum_update(checksum, $0.bindMemory(to: guchar.self).baseAddress, gssize(chunk.count)) }
  }
  return String(cString: g_checksum_get_string(checksum))
}
