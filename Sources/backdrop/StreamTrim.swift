// `compose --start/--end`: only a part of the input. Buffers are cut where they leave the decoder
// (the video and audio queues' sink pads): those that start before --start are dropped, the
// SEGMENT is moved so that --start becomes running time 0 (the output starts at 0), and the first
// buffer at or after --end ends the stream with an EOS, as a Ctrl-C does. No seek: a flushing seek
// after the muxers have started would restart their timelines.
import CGStreamer
import Foundation
import Synchronization

final class StreamTrim: @unchecked Sendable {
  let startNs: UInt64
  let endNs: UInt64?
  private enum Phase { case sendingEOS, ended }
  private let phases = Mutex<[UInt: Phase]>([:])  // by pad address, once --end is reached

  init(startNs: UInt64, endNs: UInt64?) {
    self.startNs = startNs
    self.endNs = endNs
  }

  /// Parses 90, 1.5, 01:30, 1:02:03.25 into nanoseconds.
  static func parseTime(_ text: String, option: String) throws -> UInt64 {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false).map { Double($0) }
    guard (1...3).contains(parts.count), parts.allSatisfy({ $0 != nil && $0! >= 0 }),
      parts.dropFirst().allSatisfy({ $0! < 60 }) || parts.count == 1
    else {
      throw LauncherError.usage("\(option) \(text): expected seconds (90, 1.5) or [HH:]MM:SS(.s)")
    }
    let seconds = parts.reduce(0.0) { $0 * 60 + $1! }
    return UInt64((seconds * 1e9).rounded())
  }

  /// Cuts the stream entering `element`'s sink pad.
  func attach(to element: UnsafeMutablePointer<GstElement>) {
    guard let pad = gst_element_get_static_pad(element, "sink") else { return }
    defer { gst_object_unref(pad) }
    gst_pad_add_probe(
      pad, GstPadProbeType(rawValue: GST_PAD_PROBE_TYPE_BUFFER.rawValue | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM.rawValue),
      { pad, info, data in
        guard let pad, let info, let data else { return GST_PAD_PROBE_OK }
        return Unmanaged<StreamTrim>.fromOpaque(data).takeUnretainedValue().handle(pad, info)
      }, Unmanaged.passRetained(self).toOpaque(), { data in
        if let data { Unmanaged<StreamTrim>.fromOpaque(data).release() }
      })
  }

  private func handle(_ pad: UnsafeMutablePointer<GstPad>, _ info: UnsafeMutablePointer<GstPadProbeInfo>) -> GstPadProbeReturn {
    let key = UInt(bitPattern: pad)
    if info.pointee.type.rawValue & GST_PAD_PROBE_TYPE_BUFFER.rawValue != 0 {
      guard let buffer = info.pointee.data?.assumingMemoryBound(to: GstBuffer.self) else { return GST_PAD_PROBE_OK }
      if phases.withLock({ $0[key] != nil }) { return GST_PAD_PROBE_DROP }
      let pts = UInt64(buffer.pointee.pts)
      guard pts != UInt64.max else { return GST_PAD_PROBE_OK }
      if pts < startNs { return GST_PAD_PROBE_DROP }
      if let endNs, pts >= endNs {
        phases.withLock { $0[key] = .sendingEOS }
        // The EOS goes in on this streaming thread, ahead of the dropped buffer.
        _ = gst_pad_send_event(pad, gst_event_new_eos())
        return GST_PAD_PROBE_DROP
      }
      return GST_PAD_PROBE_OK
    }
    guard let event = info.pointee.data?.assumingMemoryBound(to: GstEvent.self) else { return GST_PAD_PROBE_OK }
    switch event.pointee.type {
    case GST_EVENT_SEGMENT:
      var segment: UnsafePointer<GstSegment>?
      gst_event_parse_segment(event, &segment)
      guard let segment, segment.pointee.format == GST_FORMAT_TIME, startNs > 0 else { return GST_PAD_PROBE_OK }
      var moved = segment.pointee
      // Running time = pts − start: --start becomes 0 in the output.
      moved.start = guint64(max(UInt64(moved.start), startNs))
      moved.time = moved.start
      if let endNs, UInt64(moved.stop) == UInt64.max || UInt64(moved.stop) > endNs { moved.stop = guint64(endNs) }
      let replacement = gst_event_new_segment(&moved)
      gst_event_set_seqnum(replacement, gst_event_get_seqnum(event))
      gst_event_unref(event)
      info.pointee.data = UnsafeMutableRawPointer(replacement)
      return GST_PAD_PROBE_OK
    case GST_EVENT_EOS:
      // Ours passes (and ends the pad); upstream's own EOS after it is dropped.
      return phases.withLock { phases in
        switch phases[key] {
        case .sendingEOS:
          phases[key] = .ended
          return GST_PAD_PROBE_OK
        case .ended: return GST_PAD_PROBE_DROP
        case nil: return GST_PAD_PROBE_OK
        }
      }
    default:
      return GST_PAD_PROBE_OK
    }
  }
}
