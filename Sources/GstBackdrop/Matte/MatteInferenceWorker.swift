// birefnetmatte's inference thread (issue 14): full batches wait in a bounded queue and a thread of
// the element's own runs the engine on them and pushes the results downstream in order, so the
// upstream decoder (on the sink pad's streaming thread) and downstream elements (an encoder on
// this thread's pushes) work while a batch infers.
//
// The thread is a GstTask on the source pad, as GStreamer's queue element has it, rather than a
// bare pthread: the application sees it in STREAM_STATUS messages (to name it, give it a priority
// or a thread pool of its own), and each turn of the loop holds the source pad's stream lock, so
// gst_pad_stop_task returns only once the batch in hand is pushed. A pthread would need that
// written again.
//
// Who touches what: the streaming thread fills `stream.pending` and hands full batches over; the
// task alone runs batches (the engine session, the background image, the NaN report). Everything
// in `stream` that a batch reads changes only on the streaming thread after drain(): serialized
// events, caps changes and DISCONT wait until the queue is empty and the task idle. The flow of
// the last push travels back through `stream.lastFlow`, which is atomic.
import CBackdropShim
import CGStreamer

/// Frames handed over as one engine call; the buffers are the batch's until it runs or is dropped.
struct MatteBatch: @unchecked Sendable {
  var buffers: [UnsafeMutablePointer<GstBuffer>]
  func drop() { buffers.forEach { gst_buffer_unref($0) } }
}

/// The bounded queue between the streaming thread and the inference task (a GMutex and a GCond:
/// the streaming thread waits for room, the task for work, events for the queue to empty).
final class MatteInferenceQueue: @unchecked Sendable {
  /// Batches that may wait besides the one the task runs.
  let capacity: Int
  private let mutex = UnsafeMutablePointer<GMutex>.allocate(capacity: 1)
  private let changed = UnsafeMutablePointer<GCond>.allocate(capacity: 1)
  // guarded by mutex
  private var waiting: [MatteBatch] = []
  private var busy = false  // the task runs a batch
  private var flushing = false  // between FLUSH_START and FLUSH_STOP: batches are dropped
  private var running = false  // the task is wanted (between start() and stop())

  init(capacity: Int) {
    self.capacity = max(1, capacity)
    g_mutex_init(mutex)
    g_cond_init(changed)
  }

  deinit {
    waiting.forEach { $0.drop() }
    g_cond_clear(changed)
    g_mutex_clear(mutex)
    mutex.deallocate()
    changed.deallocate()
  }

  private func locked<T>(_ body: () -> T) -> T {
    g_mutex_lock(mutex)
    defer { g_mutex_unlock(mutex) }
    return body()
  }

  /// Streaming thread: queues a batch, waiting while `capacity` batches wait already (that is the
  /// backpressure on upstream). False, with the batch dropped, when flushing or stopped.
  func submit(_ batch: MatteBatch) -> Bool {
    let accepted = locked {
      while waiting.count >= capacity && !flushing && running { g_cond_wait(changed, mutex) }
      guard !flushing && running else { return false }
      waiting.append(batch)
      g_cond_broadcast(changed)
      return true
    }
    if !accepted { batch.drop() }
    return accepted
  }

  /// Whether a batch waits or runs.
  var hasWork: Bool { locked { !waiting.isEmpty || busy } }

  /// Streaming thread: returns once every queued batch was run and pushed (or dropped by a flush
  /// or a stop), so that what follows cannot overtake them.
  func drain() {
    locked {
      while (!waiting.isEmpty || busy) && running { g_cond_wait(changed, mutex) }
    }
  }

  /// Task: the next batch, waiting for one; nil when the task is to stop.
  func next() -> MatteBatch? {
    locked {
      while waiting.isEmpty && running { g_cond_wait(changed, mutex) }
      guard running else { return nil }
      busy = true
      g_cond_broadcast(changed)  // room for the streaming thread
      return waiting.removeFirst()
    }
  }

  /// Task: the batch from next() is pushed.
  func finished() {
    locked {
      busy = false
      g_cond_broadcast(changed)
    }
  }

  var isFlushing: Bool { locked { flushing } }

  /// FLUSH_START (on) drops the waiting batches and wakes a streaming thread waiting for room;
  /// FLUSH_STOP (off) accepts batches again.
  func setFlushing(_ on: Bool) {
    let dropped = locked { () -> [MatteBatch] in
      flushing = on
      g_cond_broadcast(changed)
      guard on else { return [] }
      defer { waiting.removeAll() }
      return waiting
    }
    dropped.forEach { $0.drop() }
  }

  func start() {
    locked {
      running = true
      flushing = false
    }
  }

  /// Drops the waiting batches and wakes everyone: the task leaves its loop, submit() refuses.
  func stop() {
    let dropped = locked { () -> [MatteBatch] in
      running = false
      g_cond_broadcast(changed)
      defer { waiting.removeAll() }
      return waiting
    }
    dropped.forEach { $0.drop() }
  }
}

extension MatteElement {
  // MARK: inference task

  /// Starts the task when inference-queue > 0 (pads are active: READY→PAUSED has run).
  func startInferenceTask() -> Bool {
    guard let inferenceQueue else { return true }
    inferenceQueue.start()
    let started = gst_pad_start_task(srcPad, { data in
      attachedState(data, as: MatteElement.self)?.inferenceTurn()
    }, UnsafeMutableRawPointer(element), nil)
    return started != 0
  }

  /// One turn of the task's loop: one batch through the engine and downstream.
  private func inferenceTurn() {
    guard let inferenceQueue, let batch = inferenceQueue.next() else {
      gst_pad_pause_task(srcPad)  // stop() follows; do not spin meanwhile
      return
    }
    if stream.failed || inferenceQueue.isFlushing {
      batch.drop()  // the ERROR is posted / the frames are flushed: no inference for them
    } else {
      let flow = processBatch(batch.buffers)
      if flow != GST_FLOW_OK { stream.lastFlow = flow }
    }
    inferenceQueue.finished()
  }

  /// Stops the task and drops what waits; returns after the batch in hand is done. Called before
  /// the pads are deactivated (the task holds the source pad's stream lock, which deactivation
  /// takes) and it wakes a streaming thread waiting for room, so deactivating the sink pad cannot
  /// hang either.
  func stopInferenceTask() {
    guard let inferenceQueue else { return }
    inferenceQueue.stop()
    gst_pad_stop_task(srcPad)
  }
}
