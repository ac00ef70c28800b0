// A part's audio covers its range exactly, sample for sample: decoded (raw) buffers that straddle
// the range's start or end are cut there, and where the decoder's first buffer after the seek
// starts late (Vorbis, Opus and AAC need a packet of pre-roll, so about 20-40 ms go missing) the
// gap is filled with silence. Adjacent parts then tile the audio without overlap or gap, which
// QuickTime's PCM track needs (qtmux counts samples, it refuses drifting timestamps) and which
// keeps the sound in sync with the picture after every cut in MP4 (AAC has no timestamps there).
import CGStreamer
import Foundation
import Synchronization

final class AudioWindow: @unchecked Sendable {
  let startNs: UInt64
  let endNs: UInt64?
  let streamTime = StreamTime()
  private struct Format { var rate: Int; var bytesPerFrame: Int }
  private let state = Mutex((format: Format?.none, started: false))

  init(startNs: UInt64, endNs: UInt64?) { (self.startNs, self.endNs) = (startNs, endNs) }

  /// Bytes per sample of a raw audio format name (S16LE, F32LE, S24_32LE, U8, S20LE…): the bits
  /// after the first letter, or those of the container word after "_".
  static func bytesPerSample(_ format: String) -> Int? {
    guard let word = format.dropFirst().split(separator: "_").last,
      let bits = Int(word.prefix { $0.isNumber }), bits > 0
    else { return nil }
    return (bits + 7) / 8
  }

  /// What to do with a buffer at stream time `time` holding `frames` samples: how many to leave
  /// out at its start, how many to keep, how many of silence to put before them; nil drops it.
  func plan(time: UInt64, frames: Int, rate: Int, first: Bool) -> (skip: Int, keep: Int, silence: Int)? {
    func samples(_ ns: UInt64) -> Int { Int((Double(ns) * Double(rate) / 1e9).rounded()) }
    let end = time + UInt64(Double(frames) * 1e9 / Double(rate))
    if let endNs, time >= endNs { return nil }
    if end <= startNs { return nil }
    let skip = time < startNs ? min(frames, samples(startNs - time)) : 0
    var keep = frames - skip
    if let endNs, end > endNs { keep = max(0, min(keep, samples(endNs - time) - skip)) }
    let silence = first && time > startNs ? samples(time - startNs) : 0
    return keep + silence > 0 ? (skip, keep, silence) : nil
  }

  func attach(to element: UnsafeMutablePointer<GstElement>, pad name: String) {
    guard let pad = gst_element_get_static_pad(element, name) else { return }
    defer { gst_object_unref(pad) }
    let mask = GstPadProbeType(rawValue: GST_PAD_PROBE_TYPE_BUFFER.rawValue | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM.rawValue)
    gst_pad_add_probe(pad, mask, { _, info, data in
      guard let info, let data else { return GST_PAD_PROBE_OK }
      return Unmanaged<AudioWindow>.fromOpaque(data).takeUnretainedValue().probe(info)
    }, Unmanaged.passRetained(self).toOpaque(), { data in
      if let data { Unmanaged<AudioWindow>.fromOpaque(data).release() }
    })
  }

  private func probe(_ info: UnsafeMutablePointer<GstPadProbeInfo>) -> GstPadProbeReturn {
    guard info.pointee.type.rawValue & GST_PAD_PROBE_TYPE_BUFFER.rawValue != 0,
      let buffer = info.pointee.data?.assumingMemoryBound(to: GstBuffer.self)
    else {
      if let event = info.pointee.data?.assumingMemoryBound(to: GstEvent.self) {
        streamTime.update(event)
        if event.pointee.type == GST_EVENT_CAPS { readFormat(event) }
      }
      return GST_PAD_PROBE_OK
    }
    let pts = UInt64(buffer.pointee.pts)
    if pts == UInt64.max { return GST_PAD_PROBE_OK }
    guard let time = streamTime.of(pts) else { return GST_PAD_PROBE_DROP }
    let (format, started) = state.withLock { ($0.format, $0.started) }
    // Without a known interleaved format the buffer is kept or dropped whole.
    guard let format else {
      if let endNs, time >= endNs { return GST_PAD_PROBE_DROP }
      return GST_PAD_PROBE_OK
    }
    let frames = Int(gst_buffer_get_size(buffer)) / format.bytesPerFrame
    guard let cut = plan(time: time, frames: frames, rate: format.rate, first: !started) else { return GST_PAD_PROBE_DROP }
    state.withLock { $0.started = true }
    if cut.skip == 0 && cut.keep == frames && cut.silence == 0 { return GST_PAD_PROBE_OK }
    // A new buffer: silence (zero: the signed and float formats decoders give), then the kept samples.
    let bpf = format.bytesPerFrame
    let size = (cut.silence + cut.keep) * bpf
    guard let out = gst_buffer_new_allocate(nil, gsize(size), nil) else { return GST_PAD_PROBE_OK }
    var bytes = [UInt8](repeating: 0, count: size)
    bytes.withUnsafeMutableBytes { raw in
      _ = gst_buffer_extract(buffer, gsize(cut.skip * bpf), raw.baseAddress! + cut.silence * bpf, gsize(cut.keep * bpf))
    }
    bytes.withUnsafeBytes { raw in _ = gst_buffer_fill(out, 0, raw.baseAddress, gsize(size)) }
    let ns = { (samples: Int) in UInt64(Double(samples) * 1e9 / Double(format.rate)) }
    out.pointee.pts = GstClockTime(pts + ns(cut.skip) >= ns(cut.silence) ? pts + ns(cut.skip) - ns(cut.silence) : 0)
    out.pointee.dts = GstClockTime.max
    out.pointee.duration = GstClockTime(ns(cut.silence + cut.keep))
    out.pointee.mini_object.flags = buffer.pointee.mini_object.flags & GST_BUFFER_FLAG_DISCONT.rawValue
    gst_buffer_unref(buffer)
    info.pointee.data = UnsafeMutableRawPointer(out)
    return GST_PAD_PROBE_OK
  }

  private func readFormat(_ event: UnsafeMutablePointer<GstEvent>) {
    var caps: UnsafeMutablePointer<GstCaps>?
    gst_event_parse_caps(event, &caps)
    guard let caps, let structure = gst_caps_get_structure(caps, 0) else { return }
    var rate: gint = 0, channels: gint = 0
    guard gst_structure_get_int(structure, "rate", &rate) != 0, gst_structure_get_int(structure, "channels", &channels) != 0,
      rate > 0, channels > 0, let name = gst_structure_get_string(structure, "format"),
      let bytes = AudioWindow.bytesPerSample(String(cString: name))
    else { return }
    let layout = gst_structure_get_string(structure, "layout").map { String(cString: $0) }
    let format = layout == nil || layout == "interleaved" ? Format(rate: Int(rate), bytesPerFrame: bytes * Int(channels)) : nil
    state.withLock { $0.format = format }
  }
}
