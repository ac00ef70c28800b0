// Batching and stream semantics through GstHarness: order, timestamps, flags, draining at EOS
// and caps changes, flushing, latency and the live batch timeout.
import CBackdropShim
import CGStreamer
import CGStreamerCheck
import XCTest

final class StreamSemanticsTests: XCTestCase {
  let picture = TestPicture()
  let frameDuration: UInt = 40_000_000

  func testBatchesPreserveOrderTimestampsAndFlags() throws {
    let harness = MatteHarness(properties: [("batch-size", "4")], inputCaps: picture.capsString)
    for i in 0..<6 {
      let buffer = picture.buffer(pts: UInt(i) * frameDuration + 1_000_000, duration: frameDuration)
      buffer.pointee.dts = UInt(i) * frameDuration
      buffer.pointee.offset = UInt(100 + i)
      if i % 3 != 0 { buffer.pointee.mini_object.flags |= GST_BUFFER_FLAG_DELTA_UNIT.rawValue }
      XCTAssertEqual(harness.push(buffer), GST_FLOW_OK)
      // Nothing leaves before a batch is full.
      if i < 3 { XCTAssertEqual(harness.pullAvailable().count, 0, "after \(i + 1) frames") }
    }
    var outputs = harness.pullAvailable()
    XCTAssertEqual(outputs.count, 4, "one full batch of 4 after 6 frames")
    XCTAssertTrue(harness.pushEvent(gst_event_new_eos()))
    outputs += harness.pullAvailable()
    XCTAssertEqual(outputs.count, 6, "the partial batch drains at EOS")
    for (i, buffer) in outputs.enumerated() {
      XCTAssertEqual(buffer.pointee.pts, UInt(i) * frameDuration + 1_000_000, "pts of frame \(i)")
      XCTAssertEqual(buffer.pointee.dts, UInt(i) * frameDuration, "dts of frame \(i)")
      XCTAssertEqual(buffer.pointee.duration, frameDuration, "duration of frame \(i)")
      XCTAssertEqual(buffer.pointee.mini_object.flags & GST_BUFFER_FLAG_DELTA_UNIT.rawValue != 0, i % 3 != 0, "flags of frame \(i)")
      let frame = harness.decode(buffer)
      XCTAssertEqual(frame.alpha(32, 24), 255)
      XCTAssertEqual(frame.alpha(2, 2), 0)
      gst_buffer_unref(buffer)
    }
    // EOS is forwarded after the drained frames.
    var sawEOS = false
    while let event = gst_harness_try_pull_event(harness.harness) {
      if event.pointee.type == GST_EVENT_EOS { sawEOS = true }
      gst_event_unref(event)
    }
    XCTAssertTrue(sawEOS)
  }

  func testGapAndSegmentDrainPendingFrames() throws {
    let harness = MatteHarness(properties: [("batch-size", "4")], inputCaps: picture.capsString)
    harness.push(picture.buffer(pts: 0))
    XCTAssertEqual(harness.pullAvailable().count, 0)
    XCTAssertTrue(harness.pushEvent(gst_event_new_gap(frameDuration, frameDuration)))
    XCTAssertEqual(harness.pullAvailable().count, 1, "GAP drains the held frame")
    harness.push(picture.buffer(pts: 2 * frameDuration))
    var segment = GstSegment()
    gst_segment_init(&segment, GST_FORMAT_TIME)
    XCTAssertTrue(harness.pushEvent(gst_event_new_segment(&segment)))
    XCTAssertEqual(harness.pullAvailable().map(\.pointee.pts), [2 * frameDuration], "SEGMENT drains the held frame")
  }

  func testFlushDropsThePendingBatch() throws {
    let harness = MatteHarness(properties: [("batch-size", "4")], inputCaps: picture.capsString)
    for i in 0..<3 { harness.push(picture.buffer(pts: UInt(i) * frameDuration)) }
    XCTAssertTrue(harness.pushEvent(gst_event_new_flush_start()))
    XCTAssertTrue(harness.pushEvent(gst_event_new_flush_stop(1)))
    var segment = GstSegment()
    gst_segment_init(&segment, GST_FORMAT_TIME)
    XCTAssertTrue(harness.pushEvent(gst_event_new_segment(&segment)))
    XCTAssertEqual(harness.pullAvailable().count, 0, "flushed frames are dropped, not pushed")
    for i in 10..<14 { harness.push(picture.buffer(pts: UInt(i) * frameDuration)) }
    let outputs = harness.pullAvailable()
    XCTAssertEqual(outputs.map(\.pointee.pts), (10..<14).map { UInt($0) * frameDuration })
    outputs.forEach { gst_buffer_unref($0) }
  }

  func testCapsChangeDrainsAndReconfigures() throws {
    let harness = MatteHarness(properties: [("batch-size", "4")], inputCaps: picture.capsString, outputCaps: "video/x-raw,format=GRAY8")
    harness.push(picture.buffer(pts: 0))
    harness.push(picture.buffer(pts: frameDuration))
    var small = TestPicture()
    small.width = 32
    small.height = 32
    small.subject = (x: 8, y: 8, width: 16, height: 16)
    gst_harness_set_src_caps_str(harness.harness, small.capsString)
    let drained = harness.pullAvailable()
    XCTAssertEqual(drained.count, 2, "frames of the old size drain before the new caps")
    XCTAssertEqual(drained.map { gst_buffer_get_size($0) }, [64 * 48, 64 * 48])
    drained.forEach { gst_buffer_unref($0) }
    for i in 0..<4 { harness.push(small.buffer(pts: UInt(2 + i) * frameDuration)) }
    let outputs = harness.pullAvailable()
    XCTAssertEqual(outputs.count, 4)
    for buffer in outputs {
      XCTAssertEqual(gst_buffer_get_size(buffer), 32 * 32)
      let frame = harness.decode(buffer)
      XCTAssertEqual(frame.components(16, 16), [255])
      XCTAssertEqual(frame.components(1, 1), [0])
      gst_buffer_unref(buffer)
    }
    let caps = harness.outputCaps
    defer { gst_caps_unref(caps) }
    var info = GstVideoInfo()
    XCTAssertNotEqual(gst_video_info_from_caps(&info, caps), 0)
    XCTAssertEqual([info.width, info.height], [32, 32])
  }

  func testLatencyCountsTheFramesABatchWaitsFor() throws {
    let harness = MatteHarness(properties: [("batch-size", "4")], inputCaps: picture.capsString)
    gst_harness_set_upstream_latency(harness.harness, 5_000_000)
    // 25 fps, batch 4: the first frame waits for 3 more (120 ms), plus upstream's 5 ms; no batch
    // has been timed yet.
    XCTAssertEqual(gst_harness_query_latency(harness.harness), 125_000_000)
    for i in 0..<4 { harness.push(picture.buffer(pts: UInt(i) * frameDuration)) }
    harness.pullAvailable().forEach { gst_buffer_unref($0) }
    // Once a batch was measured its processing time is added.
    XCTAssertGreaterThan(gst_harness_query_latency(harness.harness), 125_000_000)
  }

  func testLiveBatchTimeoutPushesAPartialBatch() throws {
    // The harness's upstream answers latency queries as a live source.
    let harness = MatteHarness(properties: [("batch-size", "4"), ("batch-timeout", "50")], inputCaps: picture.capsString)
    // 3 frames of waiting are bounded by the 50 ms timeout.
    XCTAssertEqual(gst_harness_query_latency(harness.harness), 50_000_000)
    harness.push(picture.buffer(pts: 0))
    let started = Date()
    let output = gst_harness_pull(harness.harness)  // blocks until the timeout pushes the frame
    XCTAssertNotNil(output)
    XCTAssertEqual(output?.pointee.pts, 0)
    XCTAssertLessThan(Date().timeIntervalSince(started), 10)
    if let output { gst_buffer_unref(output) }
  }

  func testLiveSourcesDefaultToBatchOne() throws {
    let harness = MatteHarness(properties: [], inputCaps: picture.capsString)
    harness.push(picture.buffer(pts: 0))
    XCTAssertEqual(harness.pullAvailable().count, 1, "a live stream is not held back for a batch")
  }

  func testQoSDropsLateFrames() throws {
    let harness = MatteHarness(properties: [("batch-size", "1")], inputCaps: picture.capsString)
    // Downstream says it is 100 ms late at running time 200 ms: frames up to 400 ms are dropped.
    let qos = gst_event_new_qos(GST_QOS_TYPE_UNDERFLOW, 0.5, 100_000_000, 200_000_000)!
    XCTAssertNotEqual(gst_harness_push_upstream_event(harness.harness, qos), 0)
    harness.push(picture.buffer(pts: 300_000_000))
    harness.push(picture.buffer(pts: 500_000_000))
    XCTAssertEqual(harness.pullAvailable().map(\.pointee.pts), [500_000_000])
    let qosMessages = harness.messages.bus
    var dropped = 0
    while let message = gst_bus_pop_filtered(qosMessages, GST_MESSAGE_QOS) {
      dropped += 1
      gst_message_unref(message)
    }
    XCTAssertEqual(dropped, 1, "one QoS message for the dropped frame")
  }
}
