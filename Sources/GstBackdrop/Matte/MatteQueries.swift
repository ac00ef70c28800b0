// birefnetmatte: caps and latency queries, and the processing time that latency reports.
import CBackdropEngineABI
import CBackdropShim
import CGStreamer

extension MatteElement {
  // MARK: queries

  func sinkQuery(_ pad: UnsafeMutablePointer<GstPad>, _ query: UnsafeMutablePointer<GstQuery>) -> Bool {
    switch query.pointee.type {
    case GST_QUERY_CAPS:
      answerCapsQuery(query, pad: pad, otherPad: srcPad)
      return true
    case GST_QUERY_ALLOCATION:
      // Our output is a different format: upstream's allocation is ours to answer. Strided frames
      // are fine, the engine follows the video meta.
      gst_query_add_allocation_meta(query, gst_video_meta_api_get_type(), nil)
      return true
    case GST_QUERY_CONTEXT where answerContextQuery(query):
      return true
    default:
      return gst_pad_query_default(pad, gstObject, query) != 0
    }
  }

  func srcQuery(_ pad: UnsafeMutablePointer<GstPad>, _ query: UnsafeMutablePointer<GstQuery>) -> Bool {
    switch query.pointee.type {
    case GST_QUERY_CAPS:
      answerCapsQuery(query, pad: pad, otherPad: sinkPad)
      return true
    case GST_QUERY_LATENCY:
      guard gst_pad_peer_query(sinkPad, query) != 0 else { return false }
      var live: gboolean = 0
      var minimum: GstClockTime = 0
      var maximum: GstClockTime = 0
      gst_query_parse_latency(query, &live, &minimum, &maximum)
      let ours = ownLatency(live: live != 0)
      let buffering = queueLatency(live: live != 0)
      gst_query_set_latency(query, live, minimum + ours,
                            maximum == GST_CLOCK_TIME_NONE_VALUE ? maximum : maximum + ours + buffering)
      matteDebug.debug(object, "latency: ours \(ours) ns (+ \(buffering) ns queue), total min \(minimum + ours)")
      return true
    case GST_QUERY_CONTEXT where answerContextQuery(query):
      return true
    default:
      return gst_pad_query_default(pad, gstObject, query) != 0
    }
  }

  /// What the element holds back: the frames it waits for to fill a batch, plus a batch's
  /// processing time. A live source's wait is bounded by batch-timeout. temporal-lookahead holds
  /// each frame until the next one has arrived: one frame more.
  func ownLatency(live: Bool) -> UInt {
    let (timeoutMs, batchSize, lookahead) = settings.withLock {
      ($0.batchTimeoutMs, $0.effectiveBatchSize(live: live), $0.temporalLookahead)
    }
    return shared.withLock { state in
      var waiting = UInt(max(0, batchSize - 1)) * state.frameDuration
      if live && timeoutMs > 0 { waiting = min(waiting, UInt(timeoutMs) * 1_000_000) }
      if lookahead { waiting += state.frameDuration }
      state.reportedProcessingTime = state.processingTime
      return waiting + state.processingTime
    }
  }

  /// What the inference queue adds. Not to the minimum: a stream that keeps up (a batch infers
  /// faster than the next one fills) finds the inference task idle whenever a batch is full, so
  /// its frames never wait in the queue; one that does not keep up is late whatever we answer.
  /// To the maximum, as GStreamer's queue adds its size: the queue can hold inference-queue full
  /// batches, time during which upstream may run ahead of downstream without losing a frame.
  func queueLatency(live: Bool) -> UInt {
    let (queued, batchSize) = settings.withLock { ($0.inferenceQueue, $0.effectiveBatchSize(live: live)) }
    return shared.withLock { UInt(queued * batchSize) * $0.frameDuration }
  }

  func recordProcessingTime(_ nanoseconds: UInt, frames: Int) {
    let postLatency = shared.withLock { state -> Bool in
      state.processingTime = nanoseconds
      // Re-announce latency when a batch takes clearly longer than what we last reported.
      return state.live && nanoseconds > state.reportedProcessingTime + state.reportedProcessingTime / 5 + 1_000_000
    }
    matteDebug.log(GST_LEVEL_LOG, object, "batch of \(frames) took \(nanoseconds / 1_000_000) ms")
    if postLatency {
      gst_element_post_message(element, gst_message_new_latency(gstObject))
    }
  }

  /// Caps on one pad follow the other pad's peer with the format and the memory left open: the
  /// element converts formats, and system and CUDA memory both ways, but keeps size, framerate and
  /// aspect ratio. The memories offered, and their order, follow the engine (MatteCudaMemory.swift).
  func answerCapsQuery(
    _ query: UnsafeMutablePointer<GstQuery>, pad: UnsafeMutablePointer<GstPad>, otherPad: UnsafeMutablePointer<GstPad>
  ) {
    var filter: UnsafeMutablePointer<GstCaps>?
    gst_query_parse_caps(query, &filter)
    let template = offeredCaps(pad)
    var result: UnsafeMutablePointer<GstCaps>
    if let peer = gst_pad_peer_query_caps(otherPad, nil), gst_caps_is_any(peer) == 0 {
      let open = gst_caps_new_empty()!
      for index in 0..<gst_caps_get_size(peer) {
        let structure = gst_structure_copy(gst_caps_get_structure(peer, index))!
        for field in ["format", "colorimetry", "chroma-site"] { gst_structure_remove_field(structure, field) }
        gst_caps_append_structure_full(open, gst_structure_copy(structure), nil)
        gst_caps_append_structure_full(open, structure, gst_caps_features_from_string(MatteMemory.cudaFeature))
      }
      gst_caps_unref(peer)
      result = gst_caps_intersect_full(template, open, GST_CAPS_INTERSECT_FIRST)
      gst_caps_unref(open)
      gst_caps_unref(template)
    } else {
      result = template
    }
    if let filter {
      let filtered = gst_caps_intersect_full(filter, result, GST_CAPS_INTERSECT_FIRST)!
      gst_caps_unref(result)
      result = filtered
    }
    gst_query_set_caps_result(query, result)
    gst_caps_unref(result)
  }
}
