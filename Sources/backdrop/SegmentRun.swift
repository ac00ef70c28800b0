// Running a compose pipeline over one range of the input: nothing passes the decoder's queues
// until a flushing, accurate seek to the range (minus the warm-up) has been made, so the encoder
// and muxer see only frames of the range; after the matte, warm-up frames and anything at or past
// the end are dropped, and the audio is cut to the same span (SegmentAudio).
import CGStreamer
import Foundation
import Synchronization

/// Drops the buffers on a pad until a FLUSH_STOP has passed it (the flush of our seek), and an
/// EOS before it: a short input can reach its end before the seek is made, and that EOS would
/// let the muxer finish the file (qtmux then wrote one without its moov) before the range came.
private final class FlushGate: @unchecked Sendable {
  let open = Atomic<Bool>(false)
  let sawData = Atomic<Bool>(false)

  func attach(to element: UnsafeMutablePointer<GstElement>, pad name: String) {
    guard let pad = gst_element_get_static_pad(element, name) else { return }
    defer { gst_object_unref(pad) }
    let mask = GstPadProbeType(
      rawValue: GST_PAD_PROBE_TYPE_BUFFER.rawValue | GST_PAD_PROBE_TYPE_EVENT_FLUSH.rawValue | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM.rawValue)
    gst_pad_add_probe(pad, mask, { _, info, data in
      guard let info, let data else { return GST_PAD_PROBE_OK }
      let gate = Unmanaged<FlushGate>.fromOpaque(data).takeUnretainedValue()
      if info.pointee.type.rawValue & GST_PAD_PROBE_TYPE_BUFFER.rawValue != 0 {
        if gate.open.load(ordering: .acquiring) { return GST_PAD_PROBE_OK }
        gate.sawData.store(true, ordering: .releasing)
        return GST_PAD_PROBE_DROP
      }
      guard let event = info.pointee.data?.assumingMemoryBound(to: GstEvent.self) else { return GST_PAD_PROBE_OK }
      if event.pointee.type == GST_EVENT_FLUSH_STOP { gate.open.store(true, ordering: .releasing) }
      if event.pointee.type == GST_EVENT_EOS && !gate.open.load(ordering: .acquiring) { return GST_PAD_PROBE_DROP }
      return GST_PAD_PROBE_OK
    }, Unmanaged.passRetained(self).toOpaque(), { data in
      if let data { Unmanaged<FlushGate>.fromOpaque(data).release() }
    })
  }
}

/// Drops video frames outside [startNs, endNs) by stream time.
private final class TimeWindowFilter: @unchecked Sendable {
  let startNs: UInt64
  let endNs: UInt64
  let streamTime = StreamTime()

  init(startNs: UInt64, endNs: UInt64?) {
    (self.startNs, self.endNs) = (startNs, endNs ?? UInt64.max)
  }

  func keeps(pts: UInt64) -> Bool { pts >= startNs && pts < endNs }

  func attach(to element: UnsafeMutablePointer<GstElement>, pad name: String) {
    guard let pad = gst_element_get_static_pad(element, name) else { return }
    defer { gst_object_unref(pad) }
    let mask = GstPadProbeType(rawValue: GST_PAD_PROBE_TYPE_BUFFER.rawValue | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM.rawValue)
    gst_pad_add_probe(pad, mask, { _, info, data in
      guard let info, let data else { return GST_PAD_PROBE_OK }
      let filter = Unmanaged<TimeWindowFilter>.fromOpaque(data).takeUnretainedValue()
      guard info.pointee.type.rawValue & GST_PAD_PROBE_TYPE_BUFFER.rawValue != 0,
        let buffer = info.pointee.data?.assumingMemoryBound(to: GstBuffer.self)
      else {
        if let event = info.pointee.data?.assumingMemoryBound(to: GstEvent.self) { filter.streamTime.update(event) }
        return GST_PAD_PROBE_OK
      }
      let pts = UInt64(buffer.pointee.pts)
      if pts == UInt64.max { return GST_PAD_PROBE_OK }
      guard let time = filter.streamTime.of(pts) else { return GST_PAD_PROBE_DROP }
      return filter.keeps(pts: time) ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP
    }, Unmanaged.passRetained(self).toOpaque(), { data in
      if let data { Unmanaged<TimeWindowFilter>.fromOpaque(data).release() }
    })
  }
}

extension SegmentWindow {
  /// Prepares `pipeline` (a compose graph: vq and aq after the decoder, matte, aconv) to write
  /// this window: gates, filters, then PAUSED and the seek. `run()` then plays it.
  func prepare(_ pipeline: Pipeline) throws {
    let video = FlushGate(), audio = FlushGate()
    for (name, gate) in [("vq", video), ("aq", audio)] {
      if let element = pipeline.child(name) {
        gate.attach(to: element, pad: "sink")
        gst_object_unref(element)
      }
    }
    if let matte = pipeline.child("matte") {
      TimeWindowFilter(startNs: startNs, endNs: endNs).attach(to: matte, pad: "src")
      gst_object_unref(matte)
    }
    if let aconv = pipeline.child("aconv") {
      AudioWindow(startNs: startNs, endNs: endNs).attach(to: aconv, pad: "src")
      gst_object_unref(aconv)
    }
    gst_element_set_state(pipeline.element, GST_STATE_PAUSED)
    // The decoder's pads exist once a first (dropped) frame reached the video queue.
    let deadline = Date().addingTimeInterval(120)
    while !video.sawData.load(ordering: .acquiring) {
      if let message = gst_bus_pop_filtered(pipeline.bus, GST_MESSAGE_ERROR) {
        defer { gst_message_unref(message) }
        throw LauncherError.failed(Pipeline.errorText(message))
      }
      guard Date() < deadline else { throw LauncherError.failed("timed out waiting for the first decoded frame") }
      usleep(5_000)
    }
    let flags = GstSeekFlags(rawValue: GST_SEEK_FLAG_FLUSH.rawValue | GST_SEEK_FLAG_ACCURATE.rawValue)
    let stop = endNs.map { gint64($0) } ?? -1
    // The seek goes up from the video queue to the demuxer, which seeks all its streams. Sent to
    // the pipeline it would travel up from the sinks through the muxer, and qtmux/mp4mux (whose
    // output segment is in bytes) answer a time seek with a GStreamer-CRITICAL on stderr.
    guard let queue = pipeline.child("vq") else { throw LauncherError.failed("no video queue to seek through") }
    defer { gst_object_unref(queue) }
    let seek = gst_event_new_seek(1.0, GST_FORMAT_TIME, flags, GST_SEEK_TYPE_SET, gint64(decodeFromNs),
                                  endNs == nil ? GST_SEEK_TYPE_NONE : GST_SEEK_TYPE_SET, stop)
    guard gst_element_send_event(queue, seek) != 0 else {
      throw LauncherError.failed("the input cannot seek to \(Double(decodeFromNs) / 1e9) s, so a range of it cannot be processed")
    }
  }
}
