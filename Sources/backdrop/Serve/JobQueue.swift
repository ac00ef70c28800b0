// The jobs of `backdrop serve`: a FIFO queue that runs at most `maxRunning` pipelines at once
// (each on its own thread: GStreamer's bus loop blocks), with room for `maxQueued` waiting jobs,
// cancel and delete, retention, and the restart rule (what was queued or running when the server
// stopped is marked interrupted).
import Foundation
import Synchronization

final class JobQueue: @unchecked Sendable {
  let dataFolder: URL
  let maxRunning: Int
  let maxQueued: Int
  let retentionSeconds: Double
  let extraModels: [String: String]
  private let store: JobStore

  private struct State {
    var records: [String: JobRecord] = [:]
    var pending: [String] = []
    var runners: [String: JobRunner] = [:]
    /// Uploads accepted but not yet queued: they hold a place in the queue.
    var reserved = 0
    var deleteWhenStopped: Set<String> = []
  }
  private let state = Mutex(State())

  var jobsFolder: URL { dataFolder.appendingPathComponent("jobs") }
  var uploadsFolder: URL { dataFolder.appendingPathComponent("uploads") }
  func folder(of id: String) -> URL { jobsFolder.appendingPathComponent(id) }

  init(dataFolder: URL, maxRunning: Int, maxQueued: Int, retentionSeconds: Double, extraModels: [String: String] = [:]) throws {
    self.extraModels = extraModels
    self.dataFolder = dataFolder
    self.maxRunning = maxRunning
    self.maxQueued = maxQueued
    self.retentionSeconds = retentionSeconds
    let fm = FileManager.default
    do {
      try fm.createDirectory(at: dataFolder.appendingPathComponent("jobs"), withIntermediateDirectories: true)
      try fm.createDirectory(at: dataFolder.appendingPathComponent("uploads"), withIntermediateDirectories: true)
    } catch {
      throw LauncherError.cannotCreate("cannot create the data folder \(dataFolder.path): \(error.localizedDescription)")
    }
    store = try JobStore(path: dataFolder.appendingPathComponent("jobs.sqlite").path)
    recover()
  }

  /// After a restart: what was queued or running is interrupted; half-written files, unfinished
  /// uploads and folders of no job are removed.
  private func recover() {
    let fm = FileManager.default
    for name in (try? fm.contentsOfDirectory(atPath: uploadsFolder.path)) ?? [] {
      try? fm.removeItem(at: uploadsFolder.appendingPathComponent(name))
    }
    var records: [String: JobRecord] = [:]
    for var record in store.all() {
      if !record.isFinished {
        let wasRunning = record.state == .running
        record.state = .interrupted
        record.finishedAt = Date().timeIntervalSince1970
        record.message = wasRunning
          ? "interrupted: the server stopped while this job was running; upload the video again"
          : "interrupted: the server stopped before this job started; upload the video again"
        store.save(record)
      }
      records[record.id] = record
    }
    for name in (try? fm.contentsOfDirectory(atPath: jobsFolder.path)) ?? [] {
      let folder = jobsFolder.appendingPathComponent(name)
      guard records[name] != nil else {
        try? fm.removeItem(at: folder)
        continue
      }
      for file in (try? fm.contentsOfDirectory(atPath: folder.path)) ?? [] where file.hasSuffix(".partial") {
        try? fm.removeItem(at: folder.appendingPathComponent(file))
      }
    }
    state.withLock { $0.records = records }
  }

  // MARK: Reading

  func record(_ id: String) -> JobRecord? { state.withLock { $0.records[id] } }

  /// All jobs, newest first.
  func list() -> [JobRecord] {
    state.withLock { Array($0.records.values) }.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }
  }

  func progress(_ id: String) -> JobProgress? { state.withLock { $0.runners[id]?.progress } }

  /// Place in the queue (0: next), for queued jobs.
  func position(_ id: String) -> Int? { state.withLock { $0.pending.firstIndex(of: id) } }

  // MARK: Admission

  /// Holds a place for an upload; false when the queue is full (the client gets 429).
  func reserve() -> Bool {
    state.withLock {
      guard $0.pending.count + $0.reserved < maxQueued else { return false }
      $0.reserved += 1
      return true
    }
  }

  func release() { state.withLock { $0.reserved -= 1 } }

  /// Queues a job whose folder holds its input (uses the place `reserve()` held).
  func enqueue(_ record: JobRecord) {
    store.save(record)
    state.withLock {
      $0.reserved -= 1
      $0.records[record.id] = record
      $0.pending.append(record.id)
    }
    startWaitingJobs()
  }

  // MARK: Running

  private func startWaitingJobs() {
    while let (id, runner) = nextToStart() {
      let thread = Thread { [self] in self.execute(id, runner) }
      thread.name = "backdrop-job-\(id)"
      thread.stackSize = 4 << 20
      thread.start()
    }
  }

  private func nextToStart() -> (String, JobRunner)? {
    state.withLock { s -> (String, JobRunner)? in
      guard s.runners.count < maxRunning, !s.pending.isEmpty else { return nil }
      let id = s.pending.removeFirst()
      guard var record = s.records[id] else { return nil }
      record.state = .running
      s.records[id] = record
      let runner = JobRunner(
        input: folder(of: id).appendingPathComponent("input").path, folder: folder(of: id), options: record.options,
        extraModels: extraModels)
      s.runners[id] = runner
      store.save(record)
      return (id, runner)
    }
  }

  private func execute(_ id: String, _ runner: JobRunner) {
    let outcome = runner.run { kind in
      self.update(id) { $0.outputs.append(kind) }
    }
    let progress = runner.progress
    let remove = state.withLock { s -> Bool in
      s.runners[id] = nil
      guard var record = s.records[id] else { return false }
      record.finishedAt = Date().timeIntervalSince1970
      record.frames = progress.frames
      record.totalFrames = progress.totalFrames
      switch outcome {
      case .done: record.state = .done
      case .cancelled:
        record.state = .cancelled
        record.message = "cancelled"
      case .failed(let text):
        record.state = .failed
        record.message = text
      }
      s.records[id] = record
      store.save(record)
      return s.deleteWhenStopped.remove(id) != nil
    }
    if remove { delete(id) }
    startWaitingJobs()
  }

  private func update(_ id: String, _ change: (inout JobRecord) -> Void) {
    state.withLock { s in
      guard var record = s.records[id] else { return }
      change(&record)
      s.records[id] = record
      store.save(record)
    }
  }

  // MARK: Cancel and delete

  /// Stops a queued or running job; false when it had already finished.
  @discardableResult
  func cancel(_ id: String) -> Bool {
    let cancelledQueued = state.withLock { s -> Bool? in
      if let runner = s.runners[id] {
        runner.cancelled.store(true, ordering: .relaxed)
        return false
      }
      guard let index = s.pending.firstIndex(of: id), var record = s.records[id] else { return nil }
      s.pending.remove(at: index)
      record.state = .cancelled
      record.message = "cancelled before it started"
      record.finishedAt = Date().timeIntervalSince1970
      s.records[id] = record
      store.save(record)
      return true
    }
    return cancelledQueued != nil
  }

  /// Removes a job and its files (a running one once its pipeline has stopped).
  func delete(_ id: String) {
    let running = state.withLock { s -> Bool in
      if let runner = s.runners[id] {
        runner.cancelled.store(true, ordering: .relaxed)
        s.deleteWhenStopped.insert(id)
        return true
      }
      s.pending.removeAll { $0 == id }
      s.records[id] = nil
      return false
    }
    guard !running else { return }
    store.delete(id)
    try? FileManager.default.removeItem(at: folder(of: id))
  }

  /// Deletes finished jobs older than the retention period; returns how many.
  @discardableResult
  func sweep(now: Double = Date().timeIntervalSince1970) -> Int {
    let expired = state.withLock { s in
      s.records.values.filter { $0.isFinished && ($0.finishedAt ?? $0.createdAt) < now - retentionSeconds }.map(\.id)
    }
    for id in expired { delete(id) }
    return expired.count
  }

  /// Before the process exits on SIGINT/SIGTERM: running pipelines are stopped and, like queued
  /// jobs, marked interrupted, so the page and the API say so after the next start.
  func shutDown() {
    state.withLock { s in
      for (id, runner) in s.runners {
        runner.cancelled.store(true, ordering: .relaxed)
        s.runners[id] = nil
        guard var record = s.records[id] else { continue }
        record.state = .interrupted
        record.finishedAt = Date().timeIntervalSince1970
        record.message = "interrupted: the server stopped while this job was running; upload the video again"
        s.records[id] = record
        store.save(record)
      }
      for id in s.pending {
        guard var record = s.records[id] else { continue }
        record.state = .interrupted
        record.finishedAt = Date().timeIntervalSince1970
        record.message = "interrupted: the server stopped before this job started; upload the video again"
        s.records[id] = record
        store.save(record)
      }
      s.pending = []
    }
  }

  /// Counts of jobs by state, for /api/health.
  func counts() -> (running: Int, queued: Int) { state.withLock { ($0.runners.count, $0.pending.count) } }
}
