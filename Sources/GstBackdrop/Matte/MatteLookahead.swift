// birefnetmatte with temporal-lookahead (issue 9): the engine writes each frame once the next one
// has arrived, so the element keeps the held frame's timestamps and flags, allocates outputs for
// exactly the frames the engine writes, and drains the held frame where the stream pauses or ends.
//
// The element's `stream.held` is set exactly while the engine session holds a frame: both take
// the newest frame of every batch, both give it up at a drain, a FLUSH (reset) or an engine
// failure, and a new session holds nothing.
import BackdropEngineClient
import CBackdropEngineABI
import CBackdropShim
import CGStreamer

extension MatteElement {
  /// The input buffers whose outputs the engine writes for this batch, in order: all of them
  /// without look-ahead; with it, the held frame (when there is one) and all but the newest.
  func outputSources(for inputs: [UnsafeMutablePointer<GstBuffer>]) -> [UnsafeMutablePointer<GstBuffer>] {
    guard stream.lookahead else { return inputs }
    return (stream.held.map { [$0] } ?? []) + inputs.dropLast()
  }

  /// After the engine took a batch: the newest frame is now the held one. Only its timestamps and
  /// flags are kept (the engine has its own copy of the pixels), so upstream's buffer goes back to
  /// its pool at once.
  func holdNewest(of inputs: [UnsafeMutablePointer<GstBuffer>]) {
    guard stream.lookahead, let newest = inputs.last else { return }
    let copy = gst_buffer_new()!
    gst_buffer_copy_into(copy, newest, GstBufferCopyFlags(rawValue: GST_BUFFER_COPY_FLAGS.rawValue | GST_BUFFER_COPY_TIMESTAMPS.rawValue), 0, UInt.max)
    dropHeld()
    stream.held = copy
  }

  func dropHeld() {
    if let held = stream.held { gst_buffer_unref(held) }
    stream.held = nil
  }

  /// Processes the pending frames and then writes and pushes the held frame without its
  /// successor: at EOS, caps, DISCONT and serialized events. The engine keeps its history, so a
  /// stream that goes on continues smoothly. After a failed push nothing more is pushed: the
  /// engine forgets the held frame (reset) as the element does.
  func finishPending() -> GstFlowReturn {
    let flow = processPending()
    guard stream.held != nil, let session = stream.session else { return flow }
    guard flow == GST_FLOW_OK else {
      dropHeld()
      session.reset()
      return flow
    }
    return drainHeld(session)
  }

  private func drainHeld(_ session: EngineSession) -> GstFlowReturn {
    guard let held = stream.held else { return GST_FLOW_OK }
    stream.held = nil
    defer { gst_buffer_unref(held) }
    let current = settings.withLock { $0 }
    if current.background == BD_MATTE_BACKGROUND_IMAGE && !prepareBackgroundImage(current.backgroundImage, fit: current.backgroundFit, session) {
      session.reset()
      return GST_FLOW_ERROR
    }
    guard let output = allocateOutput() else {
      session.reset()
      return failDrain("cannot allocate an output buffer in CUDA memory (the buffer pool is empty or inactive)")
    }
    gst_buffer_copy_into(output, held, GstBufferCopyFlags(rawValue: GST_BUFFER_COPY_FLAGS.rawValue | GST_BUFFER_COPY_TIMESTAMPS.rawValue), 0, UInt.max)
    var frame = GstVideoFrame()
    var failure: String? = nil
    let flags = GstMapFlags(rawValue: GST_MAP_WRITE.rawValue | (stream.outputPool != nil ? bd_cuda_map_flag().rawValue : 0))
    if gst_video_frame_map(&frame, &stream.outputInfo, output, flags) != 0 {
      do {
        if try !session.drain(output: engineFrame(frame), params: current.compositeParams) {
          failure = "the engine held no frame to drain"
        }
      } catch {
        failure = error.message
      }
      gst_video_frame_unmap(&frame)
    } else {
      session.reset()
      failure = "cannot map an output buffer"
    }
    if let failure {
      gst_buffer_unref(output)
      return failDrain(failure)
    }
    reportModelOutput(session, current)
    let flow = gst_pad_push(srcPad, output)
    stream.lastFlow = flow
    return flow
  }

  /// The inference ERROR for a failed drain, posted once per stream as for a failed batch.
  private func failDrain(_ failure: String) -> GstFlowReturn {
    if !stream.failed {
      postError(element, .stream, code: StreamError.failed, "Inference failed: \(failure)")
    }
    stream.failed = true
    stream.lastFlow = GST_FLOW_ERROR
    return GST_FLOW_ERROR
  }
}
