// The jobs of `backdrop serve` in a small SQLite database (DATA/jobs.sqlite), so that finished
// jobs stay listed and downloadable across a restart. Progress lives in memory (JobQueue); only
// state changes are written.
import CSQLite
import Foundation
import Synchronization

/// What a person asked for and what became of it.
struct JobRecord: Codable, Sendable, Equatable {
  enum State: String, Codable, Sendable { case queued, running, done, failed, cancelled, interrupted }

  var id: String
  /// The uploaded file's name as the client gave it: shown and used (sanitised) in downloads, never a path.
  var name: String
  var createdAt: Double
  var finishedAt: Double?
  var state: State
  var options: JobOptions
  var message: String?
  var frames: Int
  var totalFrames: Int?
  /// Output kinds written so far ("webm", "mp4").
  var outputs: [String]

  var isFinished: Bool { [.done, .failed, .cancelled, .interrupted].contains(state) }
}

/// The choices of one job.
struct JobOptions: Codable, Sendable, Equatable {
  /// Registry name of the model.
  var model: String = "selfie"
  /// "binary" (threshold) or "soft".
  var matte: String = "binary"
  /// A transparent VP9 WebM.
  var webm: Bool = true
  /// An H.264 MP4 on `background`.
  var mp4: Bool = true
  /// green, color:#RRGGBB, image (the uploaded image of this job) or blur.
  var background: String = "green"
}

final class JobStore: @unchecked Sendable {
  private let db: Mutex<OpaquePointer?>

  init(path: String) throws {
    var handle: OpaquePointer?
    guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nil) == SQLITE_OK else {
      let text = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
      sqlite3_close(handle)
      throw LauncherError.cannotCreate("cannot open the job database \(path): \(text)")
    }
    db = Mutex(handle)
    try execute("PRAGMA journal_mode=WAL")
    try execute("""
      CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY, created_at REAL NOT NULL, record TEXT NOT NULL)
      """)
  }

  deinit { _ = db.withLock { sqlite3_close($0) } }

  private func execute(_ sql: String) throws {
    try db.withLock { handle in
      var error: UnsafeMutablePointer<CChar>?
      if sqlite3_exec(handle, sql, nil, nil, &error) != SQLITE_OK {
        let text = error.map { String(cString: $0) } ?? "?"
        sqlite3_free(error)
        throw LauncherError.failed("job database: \(text)")
      }
    }
  }

  /// Runs one statement with text/real parameters, calling `row` for each result row.
  private func run(_ sql: String, _ parameters: [Any], row: (OpaquePointer) -> Void = { _ in }) {
    db.withLock { handle in
      var statement: OpaquePointer?
      guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else { return }
      defer { sqlite3_finalize(statement) }
      // SQLITE_TRANSIENT: SQLite copies the text.
      let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
      for (index, value) in parameters.enumerated() {
        let position = Int32(index + 1)
        if let text = value as? String {
          sqlite3_bind_text(statement, position, text, -1, transient)
        } else if let number = value as? Double {
          sqlite3_bind_double(statement, position, number)
        }
      }
      while sqlite3_step(statement) == SQLITE_ROW { row(statement) }
    }
  }

  func save(_ record: JobRecord) {
    guard let data = try? JSONEncoder().encode(record), let text = String(data: data, encoding: .utf8) else { return }
    run("INSERT OR REPLACE INTO jobs (id, created_at, record) VALUES (?, ?, ?)", [record.id, record.createdAt, text])
  }

  func delete(_ id: String) { run("DELETE FROM jobs WHERE id = ?", [id]) }

  /// All jobs, oldest first.
  func all() -> [JobRecord] {
    var records: [JobRecord] = []
    run("SELECT record FROM jobs ORDER BY created_at, id", []) { statement in
      guard let text = sqlite3_column_text(statement, 0) else { return }
      if let record = try? JSONDecoder().decode(JobRecord.self, from: Data(String(cString: text).utf8)) {
        records.append(record)
      }
    }
    return records
  }
}
