// matte-bench, part 6: the element's inference thread (issue 14). A pipeline where decoding and
// encoding cost something — a VP9 clip decoded, matted, encoded again by vp9alphaenc — run with
// inference-queue=0 (the model on the streaming thread, between decoding and encoding) and with
// the default queue (the model on its own thread, beside them), side by side on the same clip.
import CBackdropShim
import CGStreamer
import GstBackdrop
import Glibc

/// Seconds to run `description` to EOS, or nil with the error printed.
private func secondsToEOS(_ description: String) -> Double? {
  var parseError: UnsafeMutablePointer<GError>?
  guard let pipeline = gst_parse_launch(description, &parseError), parseError == nil else {
    print("overlap: cannot build \(description)")
    return nil
  }
  defer { gst_element_set_state(pipeline, GST_STATE_NULL); gst_object_unref(pipeline) }
  let bus = gst_element_get_bus(pipeline)!
  defer { gst_object_unref(bus) }
  let start = now()
  gst_element_set_state(pipeline, GST_STATE_PLAYING)
  let message = gst_bus_timed_pop_filtered(bus, UInt.max, GstMessageType(rawValue: GST_MESSAGE_EOS.rawValue | GST_MESSAGE_ERROR.rawValue))!
  defer { gst_message_unref(message) }
  if message.pointee.type == GST_MESSAGE_ERROR {
    var error: UnsafeMutablePointer<GError>?
    gst_message_parse_error(message, &error, nil)
    print("overlap: \(error.map { String(cString: $0.pointee.message) } ?? "error") in \(description)")
    if let error { g_error_free(error) }
    return nil
  }
  return now() - start
}

func runOverlapBench(options: Options) {
  let (model, size) = access(selfiePath, R_OK) == 0 ? (selfiePath, 256) : (lumakeyPath, options.size)
  let (width, height, frames) = (options.overlapWidth, options.overlapHeight, options.overlapFrames)
  let clip = "/tmp/matte-bench-overlap-\(getpid()).webm"
  defer { unlink(clip) }
  let make = "videotestsrc pattern=ball num-buffers=\(frames) ! video/x-raw,format=I420,width=\(width),height=\(height),framerate=30/1 ! "
    + "vp9enc deadline=1 cpu-used=8 ! webmmux ! filesink location=\(clip)"
  guard secondsToEOS(make) != nil else { return }
  func pipeline(queue: Int) -> String {
    "filesrc location=\(clip) ! matroskademux ! vp9dec ! videoconvert ! "
      + "birefnetmatte model-file=\(model) device=cpu batch-size=\(options.batch) inference-width=\(size) inference-height=\(size) "
      + "threads=\(options.overlapThreads) inference-queue=\(queue) ! "
      + "vp9alphaenc deadline=1 cpu-used=8 threads=\(options.overlapThreads) ! fakesink sync=false"
  }
  let byDefault = defaultInferenceQueue()
  let threads = options.overlapThreads == 0 ? "one per core" : String(options.overlapThreads)
  print("overlap: \(frames) frames \(width)x\(height) VP9 → vp9dec → birefnetmatte (\(model.split(separator: "/").last!), "
    + "\(size)², batch \(options.batch)) → vp9alphaenc; threads (model, encoders): \(threads)")
  _ = secondsToEOS(pipeline(queue: 0))  // warm-up: engine load, model cache, page cache
  // Interleaved rounds, best of each: the machine is shared and noisy. Besides 0 and the
  // default, one more queued batch shows whether a deeper queue would pay.
  let queues = [0, byDefault, byDefault + 1]
  var best = Array(repeating: Double.infinity, count: queues.count)
  for _ in 0..<options.overlapRounds {
    for (index, queue) in queues.enumerated() {
      guard let seconds = secondsToEOS(pipeline(queue: queue)) else { return }
      best[index] = min(best[index], seconds)
    }
  }
  let inline = Double(frames) / best[0]
  for (index, queue) in queues.enumerated() {
    let fps = Double(frames) / best[index]
    let label = queue == 0 ? "streaming thread" : queue == byDefault ? "own thread, default" : "own thread"
    print("  inference-queue=\(queue) (\(label))".padding(40) + ": \(padded(fixed(fps, 2), 8)) fps"
      + (queue == 0 ? "" : "  ratio to 0: \(fixed(fps / inline, 3))"))
  }
}

extension String {
  func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}

/// The inference-queue default, as the element declares it.
private func defaultInferenceQueue() -> Int {
  let element = gst_element_factory_make("birefnetmatte", nil)!
  defer { gst_object_unref(element) }
  let klass = element.pointee.object.object.g_type_instance.g_class.withMemoryRebound(to: GObjectClass.self, capacity: 1) { $0 }
  let spec = g_object_class_find_property(klass, "inference-queue")!
  return Int(g_value_get_uint(g_param_spec_get_default_value(spec)))
}
