// POST /api/jobs: options from the query, the video as the raw request body, streamed to disk
// chunk by chunk (never held whole), cut off with 413 past --max-upload, probed with GStreamer
// before it is queued. POST /api/images: a backdrop image for a later job, the same way.
import Foundation
import Hummingbird
import NIOCore

struct JobUpload: Sendable {
  let queue: JobQueue
  let settings: Serve.Settings

  static let maxImageBytes: Int64 = 50 << 20

  func handle(_ request: Request, context: BasicRequestContext) async throws -> Response {
    let query = request.uri.queryParameters
    let name = displayName(query.get("name") ?? "video")
    let options = try parseOptions(query)
    var imageUpload: URL?
    if options.mp4 && options.background == "image" {
      let image = query.get("image") ?? ""
      guard isUploadID(image), FileManager.default.fileExists(atPath: imagePath(image).path) else {
        throw ServeError(.badRequest, "background=image needs image=ID from POST /api/images (upload the backdrop image first)")
      }
      imageUpload = imagePath(image)
    }
    if let length = request.headers[.contentLength].flatMap(Int64.init), length > settings.maxUploadBytes {
      throw tooLarge()
    }
    guard queue.reserve() else {
      var error = ServeError(
        .tooManyRequests, "the queue is full (\(queue.maxQueued) waiting jobs): try again when a job has finished")
      error.headers[.retryAfter] = "30"
      throw error
    }
    var queued = false
    defer { if !queued { queue.release() } }
    let id = newID()
    let upload = queue.uploadsFolder.appendingPathComponent("\(id).upload")
    defer { unlink(upload.path) }
    try await receive(request.body, into: upload, limit: settings.maxUploadBytes, tooLarge: tooLarge())
    let probe: Result<MediaInfo, LauncherError> = await onThread {
      do { return .success(try MediaInfo.probe(upload.path, uploadedAs: name)) } catch let error as LauncherError { return .failure(error) } catch {
        return .failure(LauncherError.data("\(error)"))
      }
    }
    switch probe {
    case .failure(let error):
      throw ServeError(.unsupportedMediaType, error.message)
    case .success(let media) where media.stillImage:
      throw ServeError(.unsupportedMediaType,
                       "'\(name)' is a single picture: this page makes videos; cut out a photo with backdrop compose PHOTO -o cutout.png")
    case .success: break
    }
    let folder = queue.folder(of: id)
    do {
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      try FileManager.default.moveItem(at: upload, to: folder.appendingPathComponent("input"))
      if let imageUpload {
        try FileManager.default.moveItem(at: imageUpload, to: folder.appendingPathComponent(JobRunner.backdropImageName))
      }
    } catch {
      try? FileManager.default.removeItem(at: folder)
      throw ServeError(.internalServerError, "cannot store the upload: \(error.localizedDescription)")
    }
    let record = JobRecord(
      id: id, name: name, createdAt: Date().timeIntervalSince1970, finishedAt: nil, state: .queued, options: options,
      message: nil, frames: 0, totalFrames: nil, outputs: [])
    queue.enqueue(record)
    queued = true
    var response = jsonResponse(ServeApp(queue: queue, settings: settings).view(queue.record(id) ?? record), status: .created)
    response.headers[.location] = "/api/jobs/\(id)"
    return response
  }

  func handleImage(_ request: Request, context: BasicRequestContext) async throws -> Response {
    if let length = request.headers[.contentLength].flatMap(Int64.init), length > Self.maxImageBytes {
      throw ServeError(.contentTooLarge, "a backdrop image may be at most \(formatBytes(Self.maxImageBytes))")
    }
    let id = newID()
    let path = imagePath(id)
    var kept = false
    defer { if !kept { unlink(path.path) } }
    try await receive(
      request.body, into: path, limit: Self.maxImageBytes,
      tooLarge: ServeError(.contentTooLarge, "a backdrop image may be at most \(formatBytes(Self.maxImageBytes))"))
    let name = displayName(request.uri.queryParameters.get("name") ?? "image")
    let probe: LauncherError? = await onThread {
      do { _ = try MediaInfo.probe(path.path, uploadedAs: name); return nil } catch let error as LauncherError { return error } catch {
        return LauncherError.data("\(error)")
      }
    }
    if let probe {
      // An image is a one-frame video to GStreamer; "no video stream" means it is no picture.
      throw ServeError(.unsupportedMediaType, probe.message.replacingOccurrences(of: "has no video stream", with: "is not an image"))
    }
    kept = true
    return jsonResponse(["image": id], status: .created)
  }

  private func tooLarge() -> ServeError {
    ServeError(.contentTooLarge, "the upload is larger than this server accepts (\(formatBytes(settings.maxUploadBytes)), --max-upload)")
  }

  private func imagePath(_ id: String) -> URL { queue.uploadsFolder.appendingPathComponent("\(id).image") }

  private func parseOptions(_ query: Parameters) throws -> JobOptions {
    var options = JobOptions()
    if let model = query.get("model"), !model.isEmpty {
      // Registry names only: a path from a client is never opened.
      guard model.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }), !model.contains("..") else {
        throw ServeError(.badRequest, "model: a registry name such as selfie (see GET /api/models)")
      }
      options.model = model
    }
    do { _ = try resolveServeModel(options.model, extraModels: settings.extraModels) } catch let error as LauncherError {
      throw ServeError(.badRequest, "model \(options.model): \(error.message)")
    }
    if let matte = query.get("matte"), !matte.isEmpty {
      guard ["binary", "soft"].contains(matte) else { throw ServeError(.badRequest, "matte=\(matte.prefix(40)): expected binary or soft") }
      options.matte = matte
    }
    if let outputs = query.get("outputs"), !outputs.isEmpty {
      let kinds = outputs.split(separator: ",").map(String.init)
      guard kinds.allSatisfy({ ["webm", "mp4"].contains($0) }) else {
        throw ServeError(.badRequest, "outputs=\(outputs.prefix(40)): expected webm, mp4 or webm,mp4")
      }
      options.webm = kinds.contains("webm")
      options.mp4 = kinds.contains("mp4")
    }
    if let background = query.get("background"), !background.isEmpty {
      if background != "image" {
        let lower = background.lowercased()
        guard lower == "green" || lower.hasPrefix("color:") || lower.hasPrefix("blur") else {
          throw ServeError(.badRequest, "background=\(background.prefix(40)): expected green, color:#RRGGBB, blur[:STRENGTH] or image")
        }
        do { _ = try Background.parse(background) } catch let error as LauncherError {
          throw ServeError(.badRequest, error.message.replacingOccurrences(of: "--background", with: "background="))
        }
      }
      options.background = background
    }
    return options
  }
}

/// Streams a request body to a new file, cutting off past `limit` bytes (the file is removed).
func receive(_ body: RequestBody, into url: URL, limit: Int64, tooLarge: ServeError) async throws {
  let fd = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
  guard fd >= 0 else { throw ServeError(.internalServerError, "cannot store the upload: \(String(cString: strerror(errno)))") }
  var closed = false
  defer { if !closed { close(fd) } }
  var total: Int64 = 0
  do {
    for try await buffer in body {
      total += Int64(buffer.readableBytes)
      if total > limit { throw tooLarge }
      let ok = buffer.withUnsafeReadableBytes { bytes -> Bool in
        var offset = 0
        while offset < bytes.count {
          let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
          if written < 0 { if errno == EINTR { continue }; return false }
          offset += written
        }
        return true
      }
      guard ok else { throw ServeError(.init(code: 507, reasonPhrase: "Insufficient Storage"), "cannot store the upload: \(String(cString: strerror(errno)))") }
    }
  } catch {
    close(fd)
    closed = true
    unlink(url.path)
    throw error
  }
  closed = true
  close(fd)
  guard total > 0 else {
    unlink(url.path)
    throw ServeError(.badRequest, "the upload is empty: send the video file as the request body")
  }
}

/// The uploaded name as a label: its last path component, printable characters only, at most 120.
/// It is shown and offered in downloads, never used as a path.
func displayName(_ text: String) -> String {
  let last = text.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
  let printable = String(last.unicodeScalars.filter { !CharacterSet.controlCharacters.contains($0) }.map(Character.init))
  let trimmed = printable.trimmingCharacters(in: CharacterSet(charactersIn: ". ").union(.whitespaces))
  return trimmed.isEmpty ? "video" : String(trimmed.prefix(120))
}

/// 16 random hex digits.
func newID() -> String {
  (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
}

func isUploadID(_ text: String) -> Bool { text.count == 16 && text.allSatisfy(\.isHexDigit) }

/// Runs blocking work (a GStreamer probe) on its own thread, off Swift's cooperative pool.
func onThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
  await withCheckedContinuation { continuation in
    let thread = Thread { continuation.resume(returning: work()) }
    thread.start()
  }
}
