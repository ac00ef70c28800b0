// birefnetmatte's inference thread (issue 14, `inference-queue`): the same output as inference on
// the streaming thread, and the same stream semantics (EOS, flush, caps change, errors, flows
// from downstream, state changes). Outputs come from another thread here: the tests wait for them
// with blocking pulls or make a serialized event the sync point (it waits for the queue to drain).
import CBackdropShim
import CGStreamer
import CGStreamerCheck
import Foundation
import Synchronization
import XCTest

final class InferenceQueueTests: XCTestCase {
  let picture = TestPicture()
  let frameDuration: UInt = 40_000_000

  /// One run of `clip` through the element with EOS at the end: mattes, pts and durations.
  private func run(_ clip: TemporalClip, _ properties: [(String, String)]) -> (mattes: [[UInt8]], pts: [UInt], durations: [UInt]) {
    let harness = matteHarness(for: clip, properties)
    for index in 0..<clip.count { XCTAssertEqual(harness.push(clip.buffer(index)), GST_FLOW_OK, "\(properties)") }
    XCTAssertTrue(harness.pushEvent(gst_event_new_eos()))
    let outputs = harness.pullAvailable()  // EOS waited for the queue: everything is out
    defer { outputs.forEach { gst_buffer_unref($0) } }
    XCTAssertEqual(harness.messages.texts(GST_MESSAGE_ERROR), [], "\(properties)")
    return (outputs.map { clip.matte($0) }, outputs.map(\.pointee.pts), outputs.map(\.pointee.duration))
  }

  /// The temporal stage carries state from frame to frame, so a batch run out of order or twice
  /// would change the mattes: they must be identical byte for byte, with every frame delivered.
  func testOutputIsIdenticalWithAndWithoutTheThread() throws {
    let clip = try TemporalClip.make("move6")
    for batch in ["1", "4"] {
      let inline = run(clip, [("batch-size", batch), ("inference-queue", "0"), ("matte-mode", "soft")])
      XCTAssertEqual(inline.mattes.count, clip.count, "batch \(batch): EOS delivers every frame")
      XCTAssertEqual(inline.pts, (0..<clip.count).map { UInt($0) * TemporalClip.frameDuration })
      XCTAssertEqual(inline.durations, Array(repeating: TemporalClip.frameDuration, count: clip.count))
      // The mattes mean something: the subject is found (mean error against the truth is small).
      XCTAssertLessThan(MatteMetrics.mad(inline.mattes, truth: clip.alpha), 0.05, "batch \(batch)")
      for queue in ["1", "3"] {
        let threaded = run(clip, [("batch-size", batch), ("inference-queue", queue), ("matte-mode", "soft")])
        XCTAssertEqual(threaded.pts, inline.pts, "batch \(batch), queue \(queue): pts")
        XCTAssertEqual(threaded.durations, inline.durations, "batch \(batch), queue \(queue): durations")
        XCTAssertEqual(threaded.mattes.count, inline.mattes.count, "batch \(batch), queue \(queue)")
        for (index, (a, b)) in zip(threaded.mattes, inline.mattes).enumerated() where a != b {
          XCTFail("batch \(batch), queue \(queue): frame \(index) differs")
        }
      }
    }
  }

  func testDefaultRunsInferenceOnItsOwnThread() {
    let element = gst_element_factory_make("birefnetmatte", nil)!
    defer { gst_object_unref(element) }
    var value = GValue()
    g_value_init(&value, g_type_from_name("guint"))
    g_object_get_property(UnsafeMutableRawPointer(element).assumingMemoryBound(to: GObject.self), "inference-queue", &value)
    XCTAssertEqual(g_value_get_uint(&value), 1)
  }

  /// Frames queued and in flight when a flushing seek comes are dropped, not pushed after it;
  /// the frames after it come out right, in order, and nothing hangs.
  func testFlushMidStreamDropsQueuedBatches() throws {
    let harness = MatteHarness(properties: [("batch-size", "2"), ("inference-queue", "3")], inputCaps: picture.capsString)
    FinalizedBuffers.count.store(0, ordering: .relaxed)
    for i in 0..<9 {
      let buffer = picture.buffer(pts: UInt(i) * frameDuration)
      FinalizedBuffers.watch(buffer)
      XCTAssertEqual(harness.push(buffer), GST_FLOW_OK)
    }
    XCTAssertTrue(harness.pushEvent(gst_event_new_flush_start()))
    XCTAssertTrue(harness.pushEvent(gst_event_new_flush_stop(1)))
    // No leak: every input was freed by then (run, dropped from the queue, or held and dropped).
    XCTAssertEqual(FinalizedBuffers.count.load(ordering: .relaxed), 9, "input buffers freed after the flush")
    var segment = GstSegment()
    gst_segment_init(&segment, GST_FORMAT_TIME)
    XCTAssertTrue(harness.pushEvent(gst_event_new_segment(&segment)))
    let beforeSeek = harness.pullAvailable()
    // Whatever left before the flush is a prefix of the stream, in order; the held 9th never.
    XCTAssertEqual(beforeSeek.map(\.pointee.pts), (0..<beforeSeek.count).map { UInt($0) * frameDuration })
    XCTAssertLessThanOrEqual(beforeSeek.count, 8)
    beforeSeek.forEach { gst_buffer_unref($0) }
    for i in 20..<25 { XCTAssertEqual(harness.push(picture.buffer(pts: UInt(i) * frameDuration)), GST_FLOW_OK) }
    XCTAssertTrue(harness.pushEvent(gst_event_new_eos()))
    let outputs = harness.pullAvailable()
    XCTAssertEqual(outputs.map(\.pointee.pts), (20..<25).map { UInt($0) * frameDuration })
    for buffer in outputs {
      let frame = harness.decode(buffer)
      XCTAssertEqual(frame.alpha(32, 24), 255, "subject")
      XCTAssertEqual(frame.alpha(2, 2), 0, "background")
      gst_buffer_unref(buffer)
    }
  }

  /// Batches waiting at FLUSH_START are dropped without running the model on them: the flush
  /// costs at most the batch in hand.
  func testFlushDoesNotInferTheQueuedBatches() throws {
    let harness = MatteHarness(properties: [("batch-size", "2"), ("inference-queue", "3")], inputCaps: picture.capsString)
    let gate = DownstreamGate()
    gate.install(on: harness.harness.pointee.sinkpad)
    defer { gate.remove() }
    // Batch 1 runs and blocks downstream; batches 2-4 wait; the 9th frame is held.
    for i in 0..<9 { XCTAssertEqual(harness.push(picture.buffer(pts: UInt(i) * frameDuration)), GST_FLOW_OK) }
    XCTAssertTrue(harness.pushEvent(gst_event_new_flush_start()))
    gate.open()
    XCTAssertTrue(harness.pushEvent(gst_event_new_flush_stop(1)))
    XCTAssertEqual(elementStats(harness.element)["frames"], 2, "only the batch in hand was inferred")
  }

  /// A chain() waiting for room in a full queue is freed by FLUSH_START (it returns FLUSHING).
  func testFlushStartFreesAStreamingThreadWaitingForRoom() throws {
    // Downstream blocks: the harness's sink pad is replaced by one whose chain waits on a flag.
    let harness = MatteHarness(properties: [("batch-size", "1"), ("inference-queue", "1")], inputCaps: picture.capsString)
    let gate = DownstreamGate()
    gate.install(on: harness.harness.pointee.sinkpad)
    let pushed = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var flows: [GstFlowReturn] = []
    nonisolated(unsafe) let buffers = (0..<3).map { picture.buffer(pts: UInt($0) * frameDuration) }
    nonisolated(unsafe) let pushing = harness
    let pusher = Thread {
      // 1 in the task (blocked downstream), 1 in the queue, the 3rd waits for room.
      for buffer in buffers { flows.append(pushing.push(buffer)) }
      pushed.signal()
    }
    pusher.start()
    // Not a timing assertion: it only fails if the push did NOT wait.
    XCTAssertEqual(pushed.wait(timeout: .now() + 0.5), .timedOut, "the third push waits for room")
    XCTAssertTrue(harness.pushEvent(gst_event_new_flush_start()))
    gate.open()
    XCTAssertEqual(pushed.wait(timeout: .now() + 60), .success, "FLUSH_START frees the waiting push")
    XCTAssertEqual(flows.last, GST_FLOW_FLUSHING)
    XCTAssertTrue(harness.pushEvent(gst_event_new_flush_stop(1)))
    var segment = GstSegment()
    gst_segment_init(&segment, GST_FORMAT_TIME)
    XCTAssertTrue(harness.pushEvent(gst_event_new_segment(&segment)))
    gate.remove()
    harness.pullAvailable().forEach { gst_buffer_unref($0) }
    XCTAssertEqual(harness.push(picture.buffer(pts: 10 * frameDuration)), GST_FLOW_OK)
    XCTAssertEqual(harness.pull(1).map(\.pointee.pts), [10 * frameDuration], "the stream goes on after the flush")
  }

  func testCapsChangeDrainsTheQueueFirst() throws {
    let harness = MatteHarness(properties: [("batch-size", "2"), ("inference-queue", "2")],
                               inputCaps: picture.capsString, outputCaps: "video/x-raw,format=GRAY8")
    for i in 0..<5 { harness.push(picture.buffer(pts: UInt(i) * frameDuration)) }
    var small = TestPicture()
    small.width = 32
    small.height = 32
    small.subject = (x: 8, y: 8, width: 16, height: 16)
    gst_harness_set_src_caps_str(harness.harness, small.capsString)
    for i in 5..<9 { harness.push(small.buffer(pts: UInt(i) * frameDuration)) }
    XCTAssertTrue(harness.pushEvent(gst_event_new_eos()))
    let outputs = harness.pullAvailable()
    XCTAssertEqual(outputs.map(\.pointee.pts), (0..<9).map { UInt($0) * frameDuration })
    XCTAssertEqual(outputs.map { gst_buffer_get_size($0) }, Array(repeating: 64 * 48, count: 5) + Array(repeating: 32 * 32, count: 4))
    for buffer in outputs.suffix(4) {
      // Decoded with the caps now on the pad: the small frames'.
      let frame = harness.decode(buffer)
      XCTAssertEqual(frame.components(16, 16), [255])
      XCTAssertEqual(frame.components(1, 1), [0])
    }
    outputs.forEach { gst_buffer_unref($0) }
  }

  /// A TorchScript model that raises on a white frame (ImageNet-normalised mean above 1.5), made
  /// at run time with Debian's python3-torch.
  private func failingModel() throws -> String {
    let folder = try TestEnvironment.temporaryDirectory()
    let path = folder.appendingPathComponent("fails_on_white.pt").path
    let script = """
      import sys, torch
      class FailsOnWhite(torch.nn.Module):
          def forward(self, x: torch.Tensor) -> torch.Tensor:
              if bool(x.mean() > 1.5):
                  raise RuntimeError("fails_on_white: a white frame")
              return x.mean(dim=1, keepdim=True) * 20.0
      torch.jit.save(torch.jit.script(FailsOnWhite()), sys.argv[1])
      """
    // TorchScript compiles from source, so the script runs from a file.
    let scriptPath = folder.appendingPathComponent("make_fails_on_white.py")
    try script.write(to: scriptPath, atomically: true, encoding: .utf8)
    let result = try runTool("/usr/bin/python3", [scriptPath.path, path])
    guard result.status == 0 else { throw XCTSkip("cannot make the failing model (needs python3-torch): \(result.stderr)") }
    return path
  }

  func testInferenceErrorPostsOneErrorAndStops() throws {
    let model = try failingModel()
    var white = TestPicture()
    white.background = { _, _ in RGB(r: 255, g: 255, b: 255) }
    white.foreground = RGB(r: 255, g: 255, b: 255)
    for queue in ["0", "2"] {
      let harness = MatteHarness(properties: [("model-file", model), ("batch-size", "1"), ("inference-queue", queue)],
                                 inputCaps: picture.capsString)
      XCTAssertEqual(harness.push(picture.buffer(pts: 0)), GST_FLOW_OK, queue)
      XCTAssertEqual(harness.push(picture.buffer(pts: frameDuration)), GST_FLOW_OK, queue)
      let flow = harness.push(white.buffer(pts: 2 * frameDuration))  // ERROR inline; queued: OK or ERROR
      if queue == "0" { XCTAssertEqual(flow, GST_FLOW_ERROR) }
      harness.push(picture.buffer(pts: 3 * frameDuration))
      _ = harness.pushEvent(gst_event_new_gap(4 * frameDuration, frameDuration))  // sync: the queue drains
      XCTAssertEqual(harness.push(picture.buffer(pts: 4 * frameDuration)), GST_FLOW_ERROR, "\(queue): the stream is over")
      let outputs = harness.pullAvailable()
      XCTAssertEqual(outputs.map(\.pointee.pts), [0, frameDuration], "\(queue): the frames before the failure")
      outputs.forEach { gst_buffer_unref($0) }
      let errors = harness.messages.texts(GST_MESSAGE_ERROR)
      XCTAssertEqual(errors.count, 1, "\(queue): one ERROR, got \(errors)")
      XCTAssertTrue(errors.first?.contains("Inference failed") ?? false, "\(queue): \(errors)")
      XCTAssertTrue(errors.first?.contains("fails_on_white: a white frame") ?? false, "\(queue): \(errors)")
    }
  }

  /// not-linked and flushing from downstream reach upstream on the next buffer, as inline.
  func testDownstreamFlowsReachUpstream() throws {
    for queue in ["0", "2"] {
      let unlinked = MatteHarness(properties: [("batch-size", "1"), ("inference-queue", queue)], inputCaps: picture.capsString)
      let src = gst_element_get_static_pad(unlinked.element, "src")!
      XCTAssertNotEqual(gst_pad_unlink(src, unlinked.harness.pointee.sinkpad), 0)
      gst_object_unref(src)
      let first = unlinked.push(picture.buffer(pts: 0))  // queued: OK, or NOT_LINKED if the task was quick
      if queue == "0" { XCTAssertEqual(first, GST_FLOW_NOT_LINKED) }
      _ = unlinked.pushEvent(gst_event_new_gap(frameDuration, frameDuration))  // sync: the queue drains
      XCTAssertEqual(unlinked.push(picture.buffer(pts: 2 * frameDuration)), GST_FLOW_NOT_LINKED, "\(queue): not-linked")

      let flushing = MatteHarness(properties: [("batch-size", "1"), ("inference-queue", queue)], inputCaps: picture.capsString)
      XCTAssertNotEqual(gst_pad_set_active(flushing.harness.pointee.sinkpad, 0), 0)
      _ = flushing.push(picture.buffer(pts: 0))
      _ = flushing.pushEvent(gst_event_new_gap(frameDuration, frameDuration))
      XCTAssertEqual(flushing.push(picture.buffer(pts: 2 * frameDuration)), GST_FLOW_FLUSHING, "\(queue): flushing")
    }
  }

  /// The live batch timeout hands its partial batch to the same queue.
  func testLiveBatchTimeoutGoesThroughTheQueue() throws {
    let harness = MatteHarness(properties: [("batch-size", "4"), ("batch-timeout", "50"), ("inference-queue", "2")],
                               inputCaps: picture.capsString)
    harness.push(picture.buffer(pts: 0))
    harness.push(picture.buffer(pts: frameDuration))
    let outputs = harness.pull(2)  // the timeout pushes both
    XCTAssertEqual(outputs.map(\.pointee.pts), [0, frameDuration])
    outputs.forEach { gst_buffer_unref($0) }
  }

  /// The queue holds at most inference-queue full batches: the maximum latency grows by them
  /// (buffering), the minimum does not (a stream that keeps up never waits in it).
  func testLatencyCountsTheQueueInTheMaximumOnly() throws {
    func latency(_ queue: String) -> (UInt, UInt) {
      let harness = MatteHarness(properties: [("batch-size", "4"), ("inference-queue", queue)], inputCaps: picture.capsString)
      UpstreamLatency.install(on: harness.harness.pointee.srcpad, minimum: 5_000_000, maximum: 1_000_000_000)
      let query = gst_query_new_latency()!
      defer { gst_query_unref(query) }
      XCTAssertNotEqual(gst_pad_peer_query(harness.harness.pointee.sinkpad, query), 0)
      var live: gboolean = 0
      var minimum: GstClockTime = 0, maximum: GstClockTime = 0
      gst_query_parse_latency(query, &live, &minimum, &maximum)
      return (minimum, maximum)
    }
    let (min0, max0) = latency("0")
    let (min3, max3) = latency("3")
    XCTAssertEqual(min0, 125_000_000, "5 ms upstream + 3 frames a batch waits for")
    XCTAssertEqual(min3, min0)
    XCTAssertEqual(max0, 1_000_000_000 + 120_000_000, "upstream's maximum + what a batch waits for")
    XCTAssertEqual(max3, max0 + 3 * 4 * frameDuration, "+ 3 batches of 4 frames at 25 fps")
  }

  /// PAUSED→READY→NULL while the task is busy and downstream blocks (a prerolled sink), and while
  /// frames stream: returns promptly each time, and the next run works.
  func testStateChangesWhileBusyDoNotHang() throws {
    let model = TestEnvironment.designedModel("lumakey")
    let description = "videotestsrc num-buffers=100000 ! video/x-raw,width=160,height=120 ! birefnetmatte name=matte "
      + "device=cpu model-file=\(model) inference-width=64 inference-height=64 batch-size=2 inference-queue=2 ! fakesink sync=false"
    for target in [GST_STATE_PAUSED, GST_STATE_PLAYING, GST_STATE_PAUSED, GST_STATE_PLAYING] {
      _ = TestEnvironment.initialised
      let pipeline = try XCTUnwrap(gst_parse_launch(description, nil))
      gst_element_set_state(pipeline, target)
      var state = GST_STATE_NULL
      XCTAssertEqual(gst_element_get_state(pipeline, &state, nil, 60 * 1_000_000_000), GST_STATE_CHANGE_SUCCESS)
      XCTAssertEqual(state, target)
      let matte = gst_bin_get_by_name(UnsafeMutableRawPointer(pipeline).assumingMemoryBound(to: GstBin.self), "matte")!
      // Busy: wait (bounded) until batches have gone through; in PAUSED the sink holds the first.
      let until = Date().addingTimeInterval(60)
      while target == GST_STATE_PLAYING && (elementStats(matte)["frames"] ?? 0) < 8 && Date() < until { usleep(10_000) }
      gst_object_unref(matte)
      let done = DispatchSemaphore(value: 0)
      nonisolated(unsafe) let shared = pipeline
      nonisolated(unsafe) var result = GST_STATE_CHANGE_FAILURE
      Thread {
        result = gst_element_set_state(shared, GST_STATE_NULL)
        done.signal()
      }.start()
      XCTAssertEqual(done.wait(timeout: .now() + 60), .success, "set_state(NULL) from \(target) hangs")
      XCTAssertEqual(result, GST_STATE_CHANGE_SUCCESS)
      gst_object_unref(pipeline)
    }
  }
}

/// Holds every buffer reaching a pad until open() (the pad's chain function is wrapped; one gate
/// at a time, as the tests run one at a time).
final class DownstreamGate: @unchecked Sendable {
  nonisolated(unsafe) private static var current: DownstreamGate? = nil
  nonisolated(unsafe) private static var original: GstPadChainFunction? = nil
  private let condition = NSCondition()
  private var isOpen = false
  private var pad: UnsafeMutablePointer<GstPad>? = nil

  func install(on pad: UnsafeMutablePointer<GstPad>) {
    DownstreamGate.current = self
    DownstreamGate.original = pad.pointee.chainfunc
    self.pad = pad
    pad.pointee.chainfunc = { pad, parent, buffer in
      DownstreamGate.current?.waitOpen()
      return DownstreamGate.original!(pad, parent, buffer)
    }
  }

  func remove() {
    guard let pad else { return }
    pad.pointee.chainfunc = DownstreamGate.original
    DownstreamGate.current = nil
    self.pad = nil
  }

  func waitOpen() {
    condition.lock()
    while !isOpen { condition.wait() }
    condition.unlock()
  }

  func open() {
    condition.lock()
    isOpen = true
    condition.broadcast()
    condition.unlock()
  }
}

/// Makes a harness's upstream answer LATENCY queries as a live source with a finite maximum (the
/// harness's own answer has none); other queries go to the harness's function.
enum UpstreamLatency {
  nonisolated(unsafe) private static var original: GstPadQueryFunction? = nil
  nonisolated(unsafe) private static var answer: (UInt, UInt) = (0, 0)

  static func install(on pad: UnsafeMutablePointer<GstPad>, minimum: UInt, maximum: UInt) {
    original = pad.pointee.queryfunc
    answer = (minimum, maximum)
    pad.pointee.queryfunc = { pad, parent, query in
      guard let query, query.pointee.type == GST_QUERY_LATENCY else { return UpstreamLatency.original!(pad, parent, query) }
      gst_query_set_latency(query, 1, UpstreamLatency.answer.0, UpstreamLatency.answer.1)
      return 1
    }
  }
}

/// Counts the watched buffers that were freed.
enum FinalizedBuffers {
  static let count = Atomic<Int>(0)

  static func watch(_ buffer: UnsafeMutablePointer<GstBuffer>) {
    UnsafeMutableRawPointer(buffer).withMemoryRebound(to: GstMiniObject.self, capacity: 1) {
      gst_mini_object_weak_ref($0, { _, _ in FinalizedBuffers.count.add(1, ordering: .relaxed) }, nil)
    }
  }
}
