// The HTTP side of `backdrop serve`: the page, the JSON API, Server-Sent Events and file
// downloads, behind a token check when the server has a token.
import Foundation
import Hummingbird
import Logging
import NIOCore

struct ServeApp: Sendable {
  let queue: JobQueue
  let settings: Serve.Settings

  func run() async throws {
    let router = Router()
    router.add(middleware: SecurityHeadersMiddleware())
    if let token = settings.token { router.add(middleware: TokenMiddleware(token: token)) }
    addRoutes(router)
    // Log lines (warnings and worse) go to stderr: stdout carries only the URL.
    var logger = Logger(label: "backdrop-serve") { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = .warning
    let settings = self.settings
    let queue = self.queue
    let app = Application(
      router: router,
      configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "backdrop"),
      onServerRunning: { channel in
        let port = channel.localAddress?.port ?? settings.port
        let shownHost = settings.host.contains(":") ? "[\(settings.host)]" : settings.host
        let tokenPart = settings.token.map { "?token=\($0)" } ?? ""
        // The URL on stdout (scripts and tests read it); the rest on stderr.
        FileHandle.standardOutput.write(Data("http://\(shownHost):\(port)/\(tokenPart)\n".utf8))
        Console.note(
          "backdrop: serving on http://\(shownHost):\(port)/ — data in \(settings.dataFolder.path), "
            + "\(queue.maxRunning) pipeline(s) at once, uploads up to \(formatBytes(settings.maxUploadBytes))"
            + (settings.token == nil ? "" : "; every request needs the token"))
      },
      logger: logger)
    try await withThrowingTaskGroup(of: Void.self) { group in
      // No graceful shutdown: an open event stream would hold it until its job ends. Serve.swift
      // handles SIGINT/SIGTERM itself (jobs marked interrupted, then exit).
      group.addTask { try await app.runService(gracefulShutdownSignals: []) }
      group.addTask {
        // Retention: finished jobs older than the period go, with their files.
        while !Task.isCancelled {
          try await Task.sleep(for: .seconds(min(60, max(1, settings.retentionSeconds / 4))))
          queue.sweep()
        }
      }
      try await group.next()
      group.cancelAll()
    }
  }

  private func addRoutes(_ router: Router<BasicRequestContext>) {
    router.get("/") { _, _ in asset(ServeAssets.html, "text/html; charset=utf-8") }
    router.get("/app.js") { _, _ in asset(ServeAssets.script, "text/javascript; charset=utf-8") }
    router.get("/app.css") { _, _ in asset(ServeAssets.style, "text/css; charset=utf-8") }

    router.get("/api/health") { _, _ in
      let counts = queue.counts()
      return jsonResponse(["ok": true, "running": counts.running, "queued": counts.queued])
    }
    router.get("/api/models") { _, _ in jsonResponse(availableModels()) }
    router.get("/api/jobs") { _, _ in jsonResponse(["jobs": queue.list().map { view($0) }]) }
    router.post("/api/jobs") { request, context in
      try await JobUpload(queue: queue, settings: settings).handle(request, context: context)
    }
    router.post("/api/images") { request, context in
      try await JobUpload(queue: queue, settings: settings).handleImage(request, context: context)
    }
    router.get("/api/jobs/:id") { _, context in
      let record = try job(context)
      return jsonResponse(view(record))
    }
    router.get("/api/jobs/:id/events") { _, context in
      let id = try job(context).id
      return events(id)
    }
    router.get("/api/jobs/:id/files/:kind") { request, context in
      try await file(request, context: context)
    }
    router.post("/api/jobs/:id/cancel") { _, context in
      let record = try job(context)
      guard queue.cancel(record.id) else {
        throw ServeError(.conflict, "job \(record.id) has already finished (\(record.state.rawValue)): nothing to cancel")
      }
      return jsonResponse(view(queue.record(record.id) ?? record), status: .accepted)
    }
    router.delete("/api/jobs/:id") { _, context in
      let record = try job(context)
      queue.delete(record.id)
      return Response(status: .noContent)
    }
  }

  private func asset(_ text: String, _ type: String) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = type
    headers[.cacheControl] = "no-cache"
    return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
  }

  private func job(_ context: BasicRequestContext) throws -> JobRecord {
    let id = context.parameters.get("id") ?? ""
    guard let record = queue.record(id) else { throw ServeError(.notFound, "no job \(id.prefix(40)) (deleted, expired or never made)") }
    return record
  }

  /// A job as the API shows it: the record with live progress and its place in the queue.
  func view(_ record: JobRecord) -> [String: Any] {
    var fields: [String: Any] = [
      "id": record.id, "name": record.name, "state": record.state.rawValue, "created_at": record.createdAt,
      "frames": record.frames, "outputs": record.outputs,
      "files": Dictionary(uniqueKeysWithValues: record.outputs.map { ($0, "/api/jobs/\(record.id)/files/\($0)") }),
      "options": [
        "model": record.options.model, "matte": record.options.matte, "webm": record.options.webm,
        "mp4": record.options.mp4, "background": record.options.background,
      ] as [String: Any],
      "percent": record.state == .done ? 100.0 : 0.0,
    ]
    if let message = record.message { fields["message"] = message }
    if let finished = record.finishedAt { fields["finished_at"] = finished }
    if let total = record.totalFrames { fields["total_frames"] = total }
    if record.state == .running, let progress = queue.progress(record.id) {
      fields["frames"] = progress.frames
      fields["percent"] = progress.percent
      fields["fps"] = progress.fps
      if let total = progress.totalFrames { fields["total_frames"] = total }
      if let eta = progress.etaSeconds { fields["eta_s"] = eta }
    }
    if record.state == .queued, let position = queue.position(record.id) { fields["queue_position"] = position }
    return fields
  }

  /// Server-Sent Events: a `progress` event whenever the job's view changes, then `end` once it
  /// has finished (done, failed, cancelled or interrupted).
  private func events(_ id: String) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "text/event-stream"
    headers[.cacheControl] = "no-cache"
    let body = ResponseBody { writer in
      var last = ""
      var quietTicks = 0
      while true {
        guard let record = queue.record(id) else {
          try await writer.write(ByteBuffer(string: "event: end\ndata: {\"state\":\"deleted\"}\n\n"))
          break
        }
        let text = jsonText(view(record))
        if text != last {
          last = text
          quietTicks = 0
          try await writer.write(ByteBuffer(string: "event: progress\ndata: \(text)\n\n"))
        } else {
          quietTicks += 1
          if quietTicks % 60 == 0 { try await writer.write(ByteBuffer(string: ": keep-alive\n\n")) }
        }
        if record.isFinished {
          try await writer.write(ByteBuffer(string: "event: end\ndata: \(text)\n\n"))
          break
        }
        try await Task.sleep(for: .milliseconds(250))
      }
      try await writer.finish(nil)
    }
    return Response(status: .ok, headers: headers, body: body)
  }

  /// A finished output: inline (for <video>) or as a download (?download=1), with Range support.
  private func file(_ request: Request, context: BasicRequestContext) async throws -> Response {
    let record = try job(context)
    let kind = context.parameters.get("kind") ?? ""
    guard ["webm", "mp4"].contains(kind) else {
      throw ServeError(.notFound, "no file kind '\(kind.prefix(20))': a job has webm and mp4 files")
    }
    guard record.outputs.contains(kind) else {
      throw ServeError(.notFound, "job \(record.id) has no \(kind) file" + (record.isFinished ? "" : " yet (it is \(record.state.rawValue))"))
    }
    let path = queue.folder(of: record.id).appendingPathComponent(JobRunner.fileName(kind)).path
    guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber else {
      throw ServeError(.notFound, "the \(kind) file of job \(record.id) is gone")
    }
    let length = size.intValue
    var headers = HTTPFields()
    headers[.contentType] = kind == "webm" ? "video/webm" : "video/mp4"
    headers[.acceptRanges] = "bytes"
    let download = request.uri.queryParameters.get("download") == "1"
    headers[.contentDisposition] = contentDisposition(
      download ? "attachment" : "inline", fileName: downloadName(record, kind: kind))
    if let rangeText = request.headers[.range], let range = parseRange(rangeText, size: length) {
      guard let range else {
        headers[.contentRange] = "bytes */\(length)"
        return Response(status: .rangeNotSatisfiable, headers: headers)
      }
      headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(length)"
      headers[.contentLength] = String(range.count)
      let body = try await FileIO().loadFile(path: path, range: range, context: context)
      return Response(status: .partialContent, headers: headers, body: body)
    }
    headers[.contentLength] = String(length)
    let body = try await FileIO().loadFile(path: path, context: context)
    return Response(status: .ok, headers: headers, body: body)
  }

  /// The models of the registry, which of them are on this machine, and the default.
  private func availableModels() -> [String: Any] {
    var models: [[String: Any]] = settings.extraModels.keys.sorted().map { ["name": $0, "present": true] }
    if let registry = try? ModelRegistry.load() {
      models += registry.entries.map { entry in ["name": entry.name, "present": registry.installedPath(entry) != nil] }
    }
    return ["models": models, "default": "selfie"]
  }
}

/// "Name-transparent.webm" / "Name-green.mp4" from the uploaded name, reduced to safe characters.
func downloadName(_ record: JobRecord, kind: String) -> String {
  var stem = (record.name as NSString).deletingPathExtension
  if stem.isEmpty { stem = "video" }
  let suffix = kind == "webm" ? "transparent.webm" : "\(record.options.background.split(separator: ":").first ?? "composite").mp4"
  return "\(stem)-\(suffix)"
}

/// A Content-Disposition that no name can break: an ASCII fallback with only safe characters and
/// the full name percent-encoded in filename* (RFC 6266 / 8187).
func contentDisposition(_ type: String, fileName: String) -> String {
  let fallback = String(fileName.unicodeScalars.map { scalar -> Character in
    let c = Character(scalar)
    return scalar.isASCII && (c.isLetter || c.isNumber || "._-".contains(c)) ? c : "_"
  })
  var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)...Unicode.Scalar(127)))
  allowed.insert(charactersIn: "._-")
  let encoded = fileName.addingPercentEncoding(withAllowedCharacters: allowed) ?? fallback
  return "\(type); filename=\"\(fallback)\"; filename*=UTF-8''\(encoded)"
}

/// A single byte range of `bytes=a-b`, `bytes=a-` or `bytes=-n`: nil when the header is not one
/// (the whole file is sent), .some(nil) when it cannot be satisfied.
func parseRange(_ text: String, size: Int) -> ClosedRange<Int>?? {
  guard text.hasPrefix("bytes="), !text.contains(",") else { return nil }
  let parts = text.dropFirst(6).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
  guard parts.count == 2 else { return nil }
  let first = Int(parts[0].trimmingCharacters(in: .whitespaces))
  let second = Int(parts[1].trimmingCharacters(in: .whitespaces))
  switch (first, second) {
  case (let start?, let end?) where start <= end:
    return start < size ? .some(start...min(end, size - 1)) : .some(nil)
  case (let start?, nil) where parts[1].isEmpty:
    return start < size ? .some(start...(size - 1)) : .some(nil)
  case (nil, let count?) where parts[0].isEmpty && count > 0:
    return size > 0 ? .some(max(0, size - count)...(size - 1)) : .some(nil)
  default:
    return nil
  }
}

// MARK: - Responses and errors

/// An error the client sees as `{"error": message}` with a status.
struct ServeError: HTTPResponseError {
  let status: HTTPResponse.Status
  let message: String
  var headers: HTTPFields = [:]

  init(_ status: HTTPResponse.Status, _ message: String) {
    self.status = status
    self.message = message
  }

  func response(from request: Request, context: some RequestContext) throws -> Response {
    var response = jsonResponse(["error": message], status: status)
    for field in headers { response.headers.append(field) }
    return response
  }
}

func jsonText(_ object: Any) -> String {
  guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
  return String(decoding: data, as: UTF8.self)
}

func jsonResponse(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
  var headers = HTTPFields()
  headers[.contentType] = "application/json; charset=utf-8"
  headers[.cacheControl] = "no-store"
  return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: jsonText(object) + "\n")))
}

// MARK: - Middleware

/// Headers that keep the page to its own origin and stop browsers from guessing types.
struct SecurityHeadersMiddleware: RouterMiddleware {
  typealias Context = BasicRequestContext

  func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
    var response: Response
    do { response = try await next(request, context) } catch let error as HTTPError where error.status == .notFound {
      response = jsonResponse(["error": "not found: \(request.uri.path.prefix(200))"], status: .notFound)
    } catch let error as HTTPError where error.status == .methodNotAllowed {
      response = jsonResponse(["error": "\(request.method) is not allowed on \(request.uri.path.prefix(200))"], status: .methodNotAllowed)
    }
    response.headers[.init("X-Content-Type-Options")!] = "nosniff"
    response.headers[.init("Referrer-Policy")!] = "no-referrer"
    response.headers[.init("X-Frame-Options")!] = "DENY"
    response.headers[.contentSecurityPolicy] =
      "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
    return response
  }
}

/// Every request must carry the token: `Authorization: Bearer T`, the `backdrop_token` cookie, or
/// `?token=T` (the printed URL; the page then keeps it in the cookie for its video and event requests).
struct TokenMiddleware: RouterMiddleware {
  typealias Context = BasicRequestContext
  let token: String

  func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
    let bearer = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
    let cookie = request.cookies["backdrop_token"]?.value
    let query = request.uri.queryParameters.get("token")
    let presented = [bearer, cookie, query].compactMap { $0 }
    guard presented.contains(where: { constantTimeEqual($0, token) }) else {
      let message = presented.isEmpty
        ? "this server needs its token: open the URL it printed (…/?token=…) or send Authorization: Bearer TOKEN"
        : "wrong token: open the URL the server printed, or send the token it was started with"
      var response = jsonResponse(["error": message], status: .unauthorized)
      response.headers[.wwwAuthenticate] = "Bearer realm=\"backdrop\""
      return response
    }
    var response = try await next(request, context)
    if query != nil && cookie == nil {
      response.headers[.setCookie] = "backdrop_token=\(token); Path=/; HttpOnly; SameSite=Strict"
    }
    return response
  }
}

/// Compares without stopping at the first difference, so timing tells nothing about the token.
func constantTimeEqual(_ a: String, _ b: String) -> Bool {
  let x = Array(a.utf8), y = Array(b.utf8)
  var difference = UInt8(x.count == y.count ? 0 : 1)
  for index in 0..<max(x.count, y.count) {
    difference |= (index < x.count ? x[index] : 0) ^ (index < y.count ? y[index] : 0)
  }
  return difference == 0
}
