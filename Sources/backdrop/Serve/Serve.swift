// backdrop serve: the upload → progress → preview → download flow as a local web app (issue 11).
// Hummingbird 2 serves the page and the HTTP API; jobs run the compose pipelines in this process.
import ArgumentParser
import Foundation
import Hummingbird
import Synchronization

struct Serve: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Serve the web app: upload a video, watch it being processed, preview and download the results.",
    discussion: """
      Listens on 127.0.0.1 by default. Another --host (reachable from other machines) needs \
      --token: every request, the page included, must then carry it (open the printed URL, which \
      holds it once and keeps it in a cookie; scripts send `Authorization: Bearer TOKEN`). Jobs \
      run first in, first out, at most --jobs at a time; --queue more may wait, further uploads \
      get 429. Uploads stream to DIR/uploads and are checked with GStreamer before they are queued. \
      Jobs and their files are kept in DIR (a SQLite database and one folder per job) for the \
      retention period, across restarts.
      """)

  @Option(name: .long, help: "Address to listen on (a non-loopback address needs --token).")
  var host: String = "127.0.0.1"

  @Option(name: .long, help: "Port (0: any free port; the printed URL tells which).")
  var port: Int = 8080

  @Option(name: .long, help: ArgumentHelp("Folder for uploads, results and the job database (default: $XDG_DATA_HOME/backdrop/serve, ~/.local/share/backdrop/serve).", valueName: "DIR"))
  var data: String?

  @Option(name: .long, help: ArgumentHelp("Largest upload, e.g. 500MiB, 2GiB, 100MB (default 2GiB).", valueName: "SIZE"))
  var maxUpload: String = "2GiB"

  @Option(name: .long, help: "Pipelines run at once (default 1: one GPU or the CPU).")
  var jobs: Int = 1

  @Option(name: .long, help: "Jobs that may wait in the queue; beyond that uploads get 429.")
  var queue: Int = 8

  @Option(name: .long, help: ArgumentHelp("How long finished jobs and their files are kept: 90m, 24h, 7d (default 7d).", valueName: "TIME"))
  var retention: String = "7d"

  @Option(name: .long, help: "A secret every request must carry (needed for a non-loopback --host).")
  var token: String?

  @Option(name: .customLong("add-model"), help: ArgumentHelp("Offer a model file under a name besides the registry's (repeatable).", valueName: "NAME=PATH"))
  var addModel: [String] = []

  func run() throws {
    try reportingErrors { try serve() }
  }

  private func serve() throws {
    let settings = try settings()
    try GStreamer.setUp()
    let queue = try JobQueue(
      dataFolder: settings.dataFolder, maxRunning: jobs, maxQueued: queue, retentionSeconds: settings.retentionSeconds,
      extraModels: settings.extraModels)
    queue.sweep()
    let server = ServeApp(queue: queue, settings: settings)
    // Ctrl-C or SIGTERM: running and queued jobs are recorded as interrupted, then the process ends
    // (partial outputs are removed at the next start).
    var signalSources: [DispatchSourceSignal] = []
    for number in [SIGINT, SIGTERM] {
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler {
        queue.shutDown()
        Console.note("backdrop: stopped (\(number == SIGINT ? "interrupt" : "terminate")); unfinished jobs are marked interrupted")
        _exit(0)  // no static destructors while a pipeline thread may still run
      }
      source.resume()
      signalSources.append(source)
    }
    defer { signalSources.forEach { $0.cancel() } }
    let failure = Mutex<String?>(nil)
    let finished = DispatchSemaphore(value: 0)
    Task {
      do { try await server.run() } catch { failure.withLock { $0 = "\(error)" } }
      finished.signal()
    }
    finished.wait()
    if let text = failure.withLock({ $0 }) {
      throw LauncherError.unavailable("cannot serve on \(host):\(port): \(text)")
    }
  }

  struct Settings: Sendable {
    var host: String
    var port: Int
    var dataFolder: URL
    var maxUploadBytes: Int64
    var retentionSeconds: Double
    var token: String?
    /// Model files offered by name besides the registry's (--add-model).
    var extraModels: [String: String] = [:]
  }

  func settings() throws -> Settings {
    guard (0...65535).contains(port) else { throw LauncherError.usage("--port \(port): expected 0 to 65535") }
    guard jobs >= 1 && jobs <= 64 else { throw LauncherError.usage("--jobs \(jobs): expected 1 to 64") }
    guard queue >= 0 && queue <= 10_000 else { throw LauncherError.usage("--queue \(queue): expected 0 to 10000") }
    guard let maxBytes = parseByteSize(maxUpload), maxBytes > 0 else {
      throw LauncherError.usage("--max-upload \(maxUpload): expected a size such as 500MiB, 2GiB or 100MB")
    }
    guard let retentionSeconds = parseDuration(retention), retentionSeconds > 0 else {
      throw LauncherError.usage("--retention \(retention): expected a time such as 90m, 24h or 7d")
    }
    if let token, token.count < 8 || token.contains(where: { $0.isWhitespace || !$0.isASCII }) {
      throw LauncherError.usage("--token: use at least 8 printable ASCII characters without spaces")
    }
    if !isLoopback(host) && token == nil {
      throw LauncherError.usage(
        "--host \(host) is reachable from other machines: also pass --token SECRET (every request must then carry it), "
          + "or serve on 127.0.0.1")
    }
    let dataHome = ProcessInfo.processInfo.environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
      ?? (NSHomeDirectory() as NSString).appendingPathComponent(".local/share")
    let folder = data.map { URL(fileURLWithPath: $0).standardizedFileURL }
      ?? URL(fileURLWithPath: dataHome).appendingPathComponent("backdrop/serve")
    var extraModels: [String: String] = [:]
    for item in addModel {
      let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
      guard parts.count == 2, !parts[0].isEmpty, parts[0].allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
        throw LauncherError.usage("--add-model \(item): expected NAME=PATH, NAME of letters, digits, - _ .")
      }
      let path = URL(fileURLWithPath: parts[1]).standardizedFileURL.path
      try ResolvedModel.checkModelFile(path)
      extraModels[parts[0]] = path
    }
    return Settings(
      host: host, port: port, dataFolder: folder, maxUploadBytes: maxBytes, retentionSeconds: retentionSeconds, token: token,
      extraModels: extraModels)
  }
}

/// localhost, 127.0.0.0/8 and ::1.
func isLoopback(_ host: String) -> Bool {
  let trimmed = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
  if trimmed == "localhost" || trimmed == "::1" { return true }
  let parts = trimmed.split(separator: ".", omittingEmptySubsequences: false)
  return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
}

/// "2GiB", "500MiB", "100MB", "64k", "1048576" → bytes.
func parseByteSize(_ text: String) -> Int64? {
  let lower = text.lowercased().trimmingCharacters(in: .whitespaces)
  let units: [(String, Double)] = [
    ("kib", 1024), ("mib", 1_048_576), ("gib", 1_073_741_824), ("tib", 1_099_511_627_776),
    ("kb", 1e3), ("mb", 1e6), ("gb", 1e9), ("tb", 1e12), ("k", 1024), ("m", 1_048_576), ("g", 1_073_741_824), ("b", 1),
  ]
  for (suffix, factor) in units where lower.hasSuffix(suffix) {
    guard let value = Double(lower.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), value >= 0 else { return nil }
    return Int64(value * factor)
  }
  return Int64(lower)
}

/// "90m", "24h", "7d", "30s", "3600" → seconds.
func parseDuration(_ text: String) -> Double? {
  let lower = text.lowercased()
  let factors: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
  if let last = lower.last, let factor = factors[last] { return Double(lower.dropLast()).map { $0 * factor } }
  return Double(lower)
}

/// A job's model: a name given with --add-model, else a registry name (a client never names a path).
func resolveServeModel(_ name: String, extraModels: [String: String]) throws -> ResolvedModel {
  if let path = extraModels[name] {
    var model = try ResolvedModel.resolve(path)
    model.name = name
    return model
  }
  guard !name.contains("/"), !name.hasSuffix(".pt"), !name.hasSuffix(".safetensors"), !name.hasSuffix(".pth"), !name.hasSuffix(".ts") else {
    throw LauncherError.usage("'\(name)' is not a model name")
  }
  return try ResolvedModel.resolve(name)
}
