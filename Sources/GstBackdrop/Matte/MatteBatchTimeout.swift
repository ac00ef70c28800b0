// birefnetmatte: the live batch timeout (a clock callback pushes a partial batch).
import CBackdropEngineABI
import CBackdropShim
import CGStreamer

extension MatteElement {
  // MARK: live batch timeout

  func armBatchTimeout() {
    let (live, timeoutMs) = (shared.withLock { $0.live }, settings.withLock { $0.batchTimeoutMs })
    guard live, timeoutMs > 0, stream.batchSize > 1 else { return }
    let clock = gst_system_clock_obtain()!
    defer { gst_object_unref(clock) }
    let deadline = gst_clock_get_time(clock) + UInt(timeoutMs) * 1_000_000
    guard let id = gst_clock_new_single_shot_id(clock, deadline) else { return }
    let idBits = UInt(bitPattern: id)
    shared.withLock { $0.timeoutID = idBits }
    gst_object_ref(element)
    gst_clock_id_wait_async(id, { _, _, id, userData in
      let element = userData!.assumingMemoryBound(to: GstElement.self)
      attachedState(element, as: MatteElement.self)?.batchTimeoutFired(id)
      return 1
    }, element, { userData in gst_object_unref(userData) })
  }

  func cancelBatchTimeout() {
    let idBits = shared.withLock { state -> UInt in
      defer { state.timeoutID = 0 }
      return state.timeoutID
    }
    guard let id = UnsafeMutableRawPointer(bitPattern: idBits) else { return }
    gst_clock_id_unschedule(id)
    gst_clock_id_unref(id)
  }

  func batchTimeoutFired(_ id: GstClockID?) {
    bd_pad_stream_lock(sinkPad)
    defer { bd_pad_stream_unlock(sinkPad) }
    // A batch that was processed or flushed meanwhile cancelled this timeout.
    let idBits = UInt(bitPattern: id)
    guard idBits != 0, shared.withLock({ $0.timeoutID == idBits }) else { return }
    matteDebug.debug(object, "batch-timeout: pushing \(stream.pending.count) frames")
    let flow = submitPending()  // to the inference queue, as a full batch goes
    if flow != GST_FLOW_OK && flow != GST_FLOW_FLUSHING {
      matteDebug.warning(object, "partial batch push returned \(String(cString: gst_flow_get_name(flow)))")
    }
  }
}
