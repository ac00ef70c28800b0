// CUDA memory in and out (issue 14) where there is no GPU: the caps birefnetmatte advertises, the
// negotiation that keeps a CPU engine in system memory (and says why when CUDA memory is forced),
// system-memory output unchanged, and the engine's own refusal of CUDA memory on a CPU session.
import BackdropEngineClient
import CBackdropEngineABI
import CBackdropShim
import CGStreamer
import Foundation
import XCTest

final class CudaMemoryTests: XCTestCase {
  let lumakey = TestEnvironment.designedModel("lumakey")
  let cudaFeature = "memory:CUDAMemory"

  func isCuda(_ caps: UnsafeMutablePointer<GstCaps>, _ index: UInt32) -> Bool {
    guard let features = gst_caps_get_features(caps, index) else { return false }
    return gst_caps_features_contains(features, cudaFeature) != 0
  }

  /// The memory of each structure of a pad's caps, in order ("cuda" or "system").
  func memories(_ caps: UnsafeMutablePointer<GstCaps>) -> [String] {
    (0..<gst_caps_get_size(caps)).map { isCuda(caps, $0) ? "cuda" : "system" }
  }

  func makeMatte() -> UnsafeMutablePointer<GstElement> {
    _ = TestEnvironment.initialised
    let element = gst_element_factory_make("birefnetmatte", nil)!
    setProperty(element, "model-file", lumakey)
    setProperty(element, "device", "cpu")
    return element
  }

  func testPadTemplatesListCUDAMemoryWithTheSameFormats() {
    let element = makeMatte()
    defer { gst_object_unref(element) }
    for name in ["sink", "src"] {
      let pad = gst_element_get_static_pad(element, name)!
      defer { gst_object_unref(pad) }
      let caps = gst_pad_get_pad_template_caps(pad)!
      defer { gst_caps_unref(caps) }
      XCTAssertEqual(memories(caps), ["system", "cuda"], "\(name) template")
      // The same formats, sizes and rates in both memories: only the caps features differ.
      XCTAssertNotEqual(gst_structure_is_equal(gst_caps_get_structure(caps, 0), gst_caps_get_structure(caps, 1)), 0, name)
      let text = String(cString: gst_caps_to_string(caps))
      XCTAssertTrue(text.contains("video/x-raw(memory:CUDAMemory), format=(string){ "), text)
      XCTAssertTrue(text.contains(name == "sink" ? "NV12" : "A420"), text)
    }
  }

  func testCPUEngineOffersOnlySystemMemoryOnceStarted() {
    let element = makeMatte()
    defer {
      gst_element_set_state(element, GST_STATE_NULL)
      gst_object_unref(element)
    }
    let sink = gst_element_get_static_pad(element, "sink")!
    let src = gst_element_get_static_pad(element, "src")!
    defer { gst_object_unref(sink); gst_object_unref(src) }
    // Before the engine is open both memories are possible, system memory first.
    let before = gst_pad_query_caps(sink, nil)!
    XCTAssertEqual(memories(before), ["system", "cuda"])
    gst_caps_unref(before)
    XCTAssertEqual(gst_element_set_state(element, GST_STATE_PAUSED), GST_STATE_CHANGE_SUCCESS)
    for pad in [sink, src] {
      let caps = gst_pad_query_caps(pad, nil)!
      XCTAssertEqual(memories(caps), ["system"], "a CPU engine takes and writes system memory only")
      gst_caps_unref(caps)
    }
  }

  func testCUDAMemoryForcedDownstreamOfACPUEngineIsNotNegotiatedAndSaysWhy() {
    let run = runPipeline(
      "videotestsrc num-buffers=2 ! video/x-raw,width=64,height=48 ! birefnetmatte device=cpu inference-width=64 "
        + "inference-height=64 model-file=\(lumakey) ! video/x-raw(memory:CUDAMemory) ! fakesink")
    XCTAssertFalse(run.reachedEOS)
    let text = run.errors.first ?? "(no error)"
    for part in ["writes CUDA memory (video/x-raw(memory:CUDAMemory))", "only when its model runs on CUDA: this one runs on the CPU", "use device=cuda",
                 "cudaupload"] {
      XCTAssertTrue(text.contains(part), "error \"\(text)\" should mention \"\(part)\"")
    }
  }

  /// Solid frames through the lumakey model in system memory: every output pixel exact.
  func testSystemMemoryOutputIsUnchanged() throws {
    let directory = try TestEnvironment.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    for (color, expected) in [("0xffe6e6e6", [UInt8]([230, 230, 230, 255])), ("0xff141414", [20, 20, 20, 0])] {
      let output = directory.appendingPathComponent("out-\(color).rgba").path
      let run = runPipeline(
        "videotestsrc num-buffers=1 pattern=solid-color foreground-color=\(color) ! video/x-raw,format=RGBA,width=64,height=48 "
          + "! birefnetmatte device=cpu inference-width=64 inference-height=64 model-file=\(lumakey) "
          + "! video/x-raw,format=RGBA ! filesink location=\(output)")
      XCTAssertTrue(run.reachedEOS, "\(run.errors)")
      let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: output)))
      XCTAssertEqual(bytes.count, 64 * 48 * 4)
      let wrong = stride(from: 0, to: bytes.count, by: 4).filter { Array(bytes[$0..<$0 + 4]) != expected }.count
      XCTAssertEqual(wrong, 0, "\(color): every pixel \(expected), first \(Array(bytes.prefix(4)))")
    }
  }

  /// With device=cuda the element looks for the pipeline's CUDA context at NULL→READY, before an
  /// upstream decoder (which goes to READY after it) makes one of its own: peers, then the
  /// application through NEED_CONTEXT. Without a GPU none is found or made, and the element still
  /// reaches READY; with device=cpu, or auto with an engine that has no CUDA, it asks for nothing.
  func testDeviceCudaAsksForTheCUDAContextAtReady() {
    _ = TestEnvironment.initialised
    for (device, asks) in [("cuda", true), ("cuda:0", true), ("cpu", false), ("auto", false)] {
      let pipeline = gst_pipeline_new(nil)!
      let element = gst_element_factory_make("birefnetmatte", nil)!
      setProperty(element, "model-file", lumakey)
      setProperty(element, "device", device)
      let bin = UnsafeMutableRawPointer(pipeline).assumingMemoryBound(to: GstBin.self)
      XCTAssertNotEqual(gst_bin_add(bin, element), 0)
      let bus = gst_element_get_bus(pipeline)!
      XCTAssertNotEqual(gst_element_set_state(pipeline, GST_STATE_READY), GST_STATE_CHANGE_FAILURE, device)
      var asked: [String] = []
      while let message = gst_bus_pop_filtered(bus, GST_MESSAGE_NEED_CONTEXT) {
        var type: UnsafePointer<gchar>? = nil
        if gst_message_parse_context_type(message, &type) != 0, let type { asked.append(String(cString: type)) }
        gst_message_unref(message)
      }
      XCTAssertEqual(asked, asks ? ["gst.cuda.context"] : [], "device=\(device)")
      gst_element_set_state(pipeline, GST_STATE_NULL)
      gst_object_unref(bus)
      gst_object_unref(pipeline)
    }
  }

  /// The wait for a CUDA input's queued work (gst_cuda_memory_sync, GStreamer >= 1.24) touches
  /// only CUDA memories, and is absent, not faked, where gstcuda has no such call (1.22).
  func testInputSyncTouchesOnlyCUDAMemory() throws {
    _ = TestEnvironment.initialised
    let buffer = gst_buffer_new_allocate(nil, 64, nil)!
    gst_buffer_append_memory(buffer, gst_allocator_alloc(nil, 32, nil))
    defer { gst_buffer_unref(buffer) }
    XCTAssertEqual(bd_cuda_buffer_sync(buffer), 0, "system memory needs no CUDA sync")
    guard let library = dlopen("libgstcuda-1.0.so.0", RTLD_NOW | RTLD_NOLOAD) ?? dlopen("libgstcuda-1.0.so.0", RTLD_NOW) else {
      throw XCTSkip("libgstcuda-1.0 is not installed")
    }
    defer { dlclose(library) }
    let hasSync = dlsym(library, "gst_cuda_memory_sync") != nil
    var major: guint = 0, minor: guint = 0, micro: guint = 0, nano: guint = 0
    gst_version(&major, &minor, &micro, &nano)
    XCTAssertEqual(hasSync, (major, minor) >= (1, 24), "gst_cuda_memory_sync is in gstcuda from 1.24 on (GStreamer \(major).\(minor))")
  }

  func testEngineRefusesCUDAMemoryOnACPUSession() throws {
    _ = TestEnvironment.initialised
    // The engine under test: BACKDROP_ENGINE, which the test environment sets to the build folder's
    // unless a run names another (scripts/libtorch2-tests.sh).
    let library = try EngineLibrary.load(explicitPath: nil, besideFile: nil)
    let model: EngineModel = try lumakey.withCString { path in
      var options = bd_model_options()
      options.path = path
      options.device = BD_DEVICE_CPU
      options.threads = 1
      return try EngineModel(library: library, options: options)
    }
    func config(_ change: (inout bd_session_config) -> Void) -> bd_session_config {
      var config = bd_session_config()
      config.width = 64
      config.height = 48
      config.input_format = BD_FORMAT_NV12
      config.output_format = BD_FORMAT_A420
      config.inference_width = 64
      config.inference_height = 64
      config.max_batch = 1
      change(&config)
      return config
    }
    // Debian's libtorch has no CUDA: the engine says so; a CUDA engine would name the CPU session.
    let cause = library.version.contains("CUDA: built in") ? "its model runs on the CPU" : "built without CUDA"
    var token = 0
    let cases: [(String, bd_session_config)] = [
      ("CUDA memory (input: CUDA memory, output: system memory)", config { $0.input_memory = BD_MEMORY_CUDA }),
      ("CUDA memory (input: system memory, output: CUDA memory)", config { $0.output_memory = BD_MEMORY_CUDA }),
      ("a CUDA stream", withUnsafeMutablePointer(to: &token) { pointer in config { $0.cuda_stream = UnsafeMutableRawPointer(pointer) } }),
      ("unknown input memory kind 7", config { $0.input_memory = bd_memory_kind(rawValue: 7) }),
    ]
    for (expected, settings) in cases {
      do {
        _ = try EngineSession(model: model, config: settings)
        XCTFail("\(expected): the session was made")
      } catch {
        XCTAssertEqual(error.status, BD_ERR_INVALID_ARGUMENT, error.message)
        XCTAssertTrue(error.message.contains(expected), error.message)
        if !expected.hasPrefix("unknown") {
          XCTAssertTrue(error.message.contains(cause) && error.message.contains("system memory"), error.message)
        }
      }
    }
    XCTAssertNoThrow(try EngineSession(model: model, config: config { _ in }), "system memory, own stream")
  }
}
