// birefnetmatte: events on both pads — draining before serialized events, flushing, QoS.
import CBackdropEngineABI
import CBackdropShim
import CGStreamer

extension MatteElement {
  // MARK: events

  func sinkEvent(_ pad: UnsafeMutablePointer<GstPad>, _ event: UnsafeMutablePointer<GstEvent>) -> Bool {
    let type = event.pointee.type
    switch type {
    case GST_EVENT_CAPS:
      var caps: UnsafeMutablePointer<GstCaps>?
      gst_event_parse_caps(event, &caps)
      _ = finishPending()
      let ok = caps.map { configure($0) } ?? false
      gst_event_unref(event)
      return ok
    case GST_EVENT_SEGMENT:
      _ = finishPending()
      var segment: UnsafePointer<GstSegment>?
      gst_event_parse_segment(event, &segment)
      if let segment { gst_segment_copy_into(segment, &stream.segment) }
    case GST_EVENT_FLUSH_START:
      cancelBatchTimeout()
      inferenceQueue?.setFlushing(true)  // drops waiting batches, frees a chain() waiting for room
    case GST_EVENT_EOS:
      let flow = finishPending()
      // (Not after an inference ERROR: that one was posted, and the frames are gone with it.)
      if !stream.failed && (flow == GST_FLOW_NOT_LINKED || flow.rawValue < GST_FLOW_FLUSHING.rawValue) {
        // Frames were lost at the end of the stream: say so, as a source would for a failed push.
        postError(element, .stream, code: StreamError.failed,
                  "Internal data stream error: the last frames could not be pushed (\(String(cString: gst_flow_get_name(flow)))).")
      }
    case GST_EVENT_FLUSH_STOP:
      if let inferenceQueue {
        inferenceQueue.setFlushing(true)  // a FLUSH_STOP without FLUSH_START drops them too
        inferenceQueue.drain()  // the batch in hand: its pushes return FLUSHING
        inferenceQueue.setFlushing(false)
      }
      dropPending()
      stream.session?.reset()  // frames after a flush (a seek) must not inherit the old mattes
      stream.lastFlow = GST_FLOW_OK
      shared.withLock { $0.earliestTime = GST_CLOCK_TIME_NONE_VALUE }
    case GST_EVENT_STREAM_START:
      // a new stream gets its own NaN, output-range and interlacing warnings
      stream.nanReported = false
      stream.probabilityLikeReported = false
      stream.warnedInterlaced = false
    case GST_EVENT_TAG:
      break  // stream-level: no need to hold them behind queued frames
    default:
      // EOS, GAP and every other serialized event must not overtake the frames we hold.
      if (event.pointee.type.rawValue & GST_EVENT_TYPE_SERIALIZED.rawValue) != 0 {
        _ = finishPending()
      }
    }
    return gst_pad_event_default(pad, gstObject, event) != 0
  }

  func srcEvent(_ pad: UnsafeMutablePointer<GstPad>, _ event: UnsafeMutablePointer<GstEvent>) -> Bool {
    if event.pointee.type == GST_EVENT_QOS {
      var type = GST_QOS_TYPE_OVERFLOW
      var proportion = 0.0
      var diff: GstClockTimeDiff = 0
      var timestamp: GstClockTime = 0
      gst_event_parse_qos(event, &type, &proportion, &diff, &timestamp)
      // As GstBaseTransform does: when late, expect to be at least as late again on the next frame.
      let earliest: UInt
      if diff > 0 {
        earliest = timestamp &+ UInt(2 * diff)
      } else {
        earliest = UInt(max(0, Int64(timestamp) + Int64(diff)))
      }
      shared.withLock { $0.earliestTime = earliest }
    }
    return gst_pad_event_default(pad, gstObject, event) != 0
  }

  /// QoS: drops a frame whose running time is already behind what downstream needs.
  func isTooLate(_ buffer: UnsafeMutablePointer<GstBuffer>) -> Bool {
    let pts = buffer.pointee.pts
    guard settings.withLock({ $0.qos }), pts != GST_CLOCK_TIME_NONE_VALUE,
      stream.segment.format == GST_FORMAT_TIME
    else { return false }
    let runningTime = gst_segment_to_running_time(&stream.segment, GST_FORMAT_TIME, pts)
    let (late, processed, dropped, live) = shared.withLock { state -> (Bool, UInt, UInt, Bool) in
      let late = state.earliestTime != GST_CLOCK_TIME_NONE_VALUE && runningTime != GST_CLOCK_TIME_NONE_VALUE
        && runningTime <= state.earliestTime
      if late { state.dropped += 1 } else { state.processed += 1 }
      return (late, state.processed, state.dropped, state.live)
    }
    if late {
      let streamTime = gst_segment_to_stream_time(&stream.segment, GST_FORMAT_TIME, pts)
      let message = gst_message_new_qos(
        gstObject, live ? 1 : 0,
        runningTime, streamTime, pts, buffer.pointee.duration)
      gst_message_set_qos_stats(message, GST_FORMAT_BUFFERS, processed, dropped)
      gst_element_post_message(element, message)
      matteDebug.debug(object, "QoS: dropping a late frame at running time \(runningTime)")
    }
    return late
  }
}
