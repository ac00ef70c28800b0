// backdrop bench: on one 720p clip, in one run, compose end-to-end fps (decode → matte → VP9-alpha
// WebM), element-only fps on decoded frames and engine-only fps, for selfie at 256² and
// BiRefNet-lite (fixture-rule "bdrand" weights) at 512², on the CPU, with the ratios.
import ArgumentParser
import BackdropEngineClient
import CBackdropEngineABI
import CBDRand
import CGStreamer
import Foundation

struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Benchmark: compose end-to-end vs element alone vs engine alone, on the same frames.",
    discussion: """
      Each figure leaves out the first batch (model load and warm-up). BiRefNet-lite weights come \
      from --birefnet, else are generated with the fixtures' bdrand rule from \
      Tests/Fixtures/birefnet/manifest_swin_v1_t.json (the row is skipped, with the reason, \
      when neither is there). Build with -c release for figures worth comparing.
      """)

  @Option(name: .long, help: "Frames per measurement.")
  var frames: Int = 16

  @Option(name: .long, help: "Frames per inference call.")
  var batchSize: Int = 4

  @Option(name: .long, help: "CPU threads for inference (0 = one per core).")
  var threads: Int = 0

  @Option(name: .long, help: "BiRefNet-lite (swin_v1_t) weights; default: bdrand weights from the fixture manifest.")
  var birefnet: String?

  @Option(name: .long, help: "Fixture folder holding manifest_swin_v1_t.json.")
  var fixtures: String?

  @Option(name: .long, help: "Repetitions of each measurement, interleaved; the best is printed.")
  var repeats: Int = 3

  @Option(name: .long, help: "Only these rows (selfie, lite), comma-separated; empty for none.")
  var rows: String = "selfie,lite"

  @Option(name: .long, help: ArgumentHelp("An extra row: a model name or file and its inference size (repeatable).", valueName: "MODEL@SIZE"))
  var model: [String] = []

  func run() throws { try reportingErrors { try bench() } }

  static let width = 1280, height = 720

  private func bench() throws {
    guard repeats >= 1 else { throw LauncherError.usage("--repeats must be at least 1") }
    guard frames > batchSize else { throw LauncherError.usage("--frames must be larger than --batch-size (the first batch is not timed)") }
    try GStreamer.setUp()
    let engine = try Engine.load()
    let work = FileManager.default.temporaryDirectory.appendingPathComponent("backdrop-bench-\(getpid())")
    try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: work) }

    // The clip: a moving ball over a textured field, VP8 at 720p; and its frames decoded once.
    let clip = work.appendingPathComponent("clip.webm").path
    let raw = work.appendingPathComponent("frames.i420").path
    try runToEOS(
      "videotestsrc num-buffers=\(frames) pattern=ball background-color=0xff4060a0 ! "
        + "video/x-raw,width=\(Self.width),height=\(Self.height),framerate=30/1 ! vp8enc deadline=1 ! webmmux ! "
        + "filesink location=\(gstQuote(clip))")
    try runToEOS(
      "filesrc location=\(gstQuote(clip)) ! decodebin ! videoconvert ! video/x-raw,format=I420 ! "
        + "filesink location=\(gstQuote(raw))")
    let frameBytes = Self.width * Self.height * 3 / 2
    let decoded = try Data(contentsOf: URL(fileURLWithPath: raw))
    guard decoded.count == frameBytes * frames else { throw LauncherError.failed("decoded \(decoded.count) bytes, expected \(frameBytes * frames)") }

    print("backdrop bench: \(Self.width)x\(Self.height), \(frames) frames a measurement (first batch not timed, best of \(repeats)), "
          + "batch \(batchSize), CPU, threads \(threads == 0 ? "one per core (\(ProcessInfo.processInfo.activeProcessorCount))" : "\(threads)")")
    print("engine: \(engine.version)")
    print("")
    print("model                     inference   engine fps   element fps   compose fps   element/engine   compose/element   compose/engine")

    var models: [(String, String, Int)] = []
    let wanted = Set(rows.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
    if wanted.contains("selfie") {
      do { models.append(("selfie", try ResolvedModel.resolve("selfie").path, 256)) } catch let error as LauncherError {
        print("selfie                    skipped: \(error.message)")
      }
    }
    if wanted.contains("lite") {
      if let path = try liteWeights(into: work) { models.append(("birefnet-lite (bdrand)", path, 512)) }
    }
    for row in model {
      let parts = row.split(separator: "@", omittingEmptySubsequences: false)
      guard parts.count == 2, let size = Int(parts[1]), (32...4096).contains(size) else {
        throw LauncherError.usage("--model \(row): expected MODEL@SIZE, e.g. selfie@256")
      }
      let resolved = try ResolvedModel.resolve(String(parts[0]))
      models.append((URL(fileURLWithPath: String(parts[0])).lastPathComponent, resolved.path, size))
    }
    for (name, path, size) in models {
      // temporal-smooth=0: the engine row runs every frame on its own, so the element rows do too.
      let properties = "model-file=\(gstQuote(path)) inference-width=\(size) inference-height=\(size) batch-size=\(batchSize) device=cpu"
        + " temporal-smooth=0" + (threads > 0 ? " threads=\(threads)" : "")
      let elementPipeline =
        "filesrc location=\(gstQuote(raw)) blocksize=\(frameBytes) ! rawvideoparse format=i420 width=\(Self.width) "
        + "height=\(Self.height) framerate=30/1 ! birefnetmatte name=matte \(properties) ! video/x-raw,format=A420 ! "
        + "fakesink sync=false"
      let composePipeline =
        "filesrc location=\(gstQuote(clip)) ! decodebin ! videoconvert ! birefnetmatte name=matte \(properties) ! "
        + "video/x-raw,format=A420 ! vp9alphaenc ! webmalphamux ! filesink location=\(gstQuote(work.appendingPathComponent("out.webm").path))"
      // Interleaved repetitions, best of each: the machine is shared and a lone run is noisy.
      var engineFPS = 0.0, elementFPS = 0.0, composeFPS = 0.0
      for _ in 0..<repeats {
        engineFPS = max(engineFPS, try engine.measure(model: path, size: size, frames: decoded, count: frames, batch: batchSize, threads: threads))
        elementFPS = max(elementFPS, try timeMatte(elementPipeline))
        composeFPS = max(composeFPS, try timeMatte(composePipeline))
      }
      print(
        name.padding(toLength: 25, withPad: " ", startingAt: 0) + " "
          + "\(size)x\(size)".padding(toLength: 11, withPad: " ", startingAt: 0)
          + String(format: " %10.2f   %11.2f   %11.2f   %14.3f   %15.3f   %14.3f", engineFPS, elementFPS, composeFPS,
                   elementFPS / engineFPS, composeFPS / elementFPS, composeFPS / engineFPS))
    }
  }

  /// BiRefNet-lite weights: --birefnet, else bdrand weights generated from the fixture manifest.
  private func liteWeights(into work: URL) throws -> String? {
    if let birefnet {
      try ResolvedModel.checkModelFile(birefnet)
      return birefnet
    }
    let folder = fixtures ?? ModelRegistry.modelsFolder().map {
      $0.deletingLastPathComponent().appendingPathComponent("Tests/Fixtures/birefnet").path
    } ?? "Tests/Fixtures/birefnet"
    let manifest = URL(fileURLWithPath: folder).appendingPathComponent("manifest_swin_v1_t.json")
    guard FileManager.default.fileExists(atPath: manifest.path) else {
      print("birefnet-lite (bdrand)    skipped: no --birefnet and no fixture manifest at \(manifest.path)")
      return nil
    }
    let output = work.appendingPathComponent("bdrand_swin_v1_t.safetensors")
    try BDRand.writeWeights(manifest: manifest, to: output)
    return output.path
  }

  private func runToEOS(_ description: String) throws {
    let pipeline = try Pipeline(description)
    if case .error(let text) = pipeline.run() { throw LauncherError.failed(text) }
  }

  /// Frames a second through the matte, from the moment the first batch has left it to EOS at the
  /// end of the pipeline, over the frames after the first batch.
  private func timeMatte(_ description: String) throws -> Double {
    let pipeline = try Pipeline(description)
    let counter = TimingCounter(startAfter: batchSize)
    if let matte = pipeline.child("matte") {
      counter.attach(to: matte)
      gst_object_unref(matte)
    }
    switch pipeline.run() {
    case .eos: break
    case .error(let text): throw LauncherError.failed(text)
    default: throw LauncherError.aborted("aborted")
    }
    let end = g_get_monotonic_time()
    let (count, first) = counter.state
    guard count == frames, first > 0 else { throw LauncherError.failed("the matte gave \(count) of \(frames) frames") }
    return Double(frames - batchSize) / (Double(end - first) / 1e6)
  }
}

/// When the first batch has left an element (timing starts there), and how many buffers left.
final class TimingCounter: @unchecked Sendable {
  private var count = 0
  private var first: Int = 0
  private let startAfter: Int
  private let lock = NSLock()

  init(startAfter: Int) { self.startAfter = startAfter }

  var state: (Int, Int) { lock.withLock { (count, first) } }

  fileprivate func passed() {
    let now = g_get_monotonic_time()
    lock.withLock {
      count += 1
      if count == startAfter { first = now }
    }
  }

  func attach(to element: UnsafeMutablePointer<GstElement>) {
    guard let pad = gst_element_get_static_pad(element, "src") else { return }
    defer { gst_object_unref(pad) }
    gst_pad_add_probe(
      pad, GST_PAD_PROBE_TYPE_BUFFER,
      { _, _, data in
        if let data { Unmanaged<TimingCounter>.fromOpaque(data).takeUnretainedValue().passed() }
        return GST_PAD_PROBE_OK
      }, Unmanaged.passRetained(self).toOpaque(), { data in
        if let data { Unmanaged<TimingCounter>.fromOpaque(data).release() }
      })
  }
}

/// The engine through the element's own wrapper (BackdropEngineClient): engine-only frames a second.
struct Engine: @unchecked Sendable {
  let library: EngineLibrary
  var version: String { library.version }

  static func load() throws -> Engine {
    do {
      return Engine(library: try EngineLibrary.load(explicitPath: nil, besideFile: GStreamer.pluginFile))
    } catch {
      throw LauncherError.unavailable("cannot load the engine: \(error.message)")
    }
  }

  /// Runs `measureHere` on a thread of its own, as the element runs inference on its own thread.
  /// (On this process's main thread libtorch's OpenMP pool ran 3-6 times slower with 2 threads on
  /// a busy 2-core machine, which would misstate the engine.)
  func measure(model path: String, size: Int, frames data: Data, count: Int, batch: Int, threads: Int) throws -> Double {
    nonisolated(unsafe) var outcome: Result<Double, Error> = .success(0)
    let thread = Thread {
      outcome = Result { try measureHere(model: path, size: size, frames: data, count: count, batch: batch, threads: threads) }
    }
    thread.stackSize = 8 << 20
    thread.start()
    while !thread.isFinished { usleep(2000) }
    return try outcome.get()
  }

  /// I420 frames in, A420 out (as in compose), `batch` at a time; the first batch is not timed.
  func measureHere(model path: String, size: Int, frames data: Data, count: Int, batch: Int, threads: Int) throws -> Double {
    let model: EngineModel
    do {
      model = try path.withCString { cPath throws(EngineCallError) -> EngineModel in
        let options = bd_model_options(path: cPath, device: BD_DEVICE_CPU, device_index: 0, precision: BD_PRECISION_FP32,
                                       patch_order: BD_PATCH_ORDER_AUTO, threads: Int32(threads))
        return try EngineModel(library: library, options: options)
      }
    } catch { throw LauncherError.failed("engine: \((error as? EngineCallError)?.message ?? "\(error)")") }
    let (w, h) = (Bench.width, Bench.height)
    // Field by field, so that fields appended to the ABI later stay zero (off) here.
    var config = bd_session_config()
    config.width = Int32(w)
    config.height = Int32(h)
    config.input_format = BD_FORMAT_I420
    config.output_format = BD_FORMAT_A420
    config.input_matrix = BD_MATRIX_BT601
    config.output_matrix = BD_MATRIX_BT601
    config.inference_width = Int32(size)
    config.inference_height = Int32(size)
    config.max_batch = Int32(batch)
    let session: EngineSession
    do { session = try EngineSession(model: model, config: config) } catch {
      throw LauncherError.failed("engine session: \(error.message)")
    }
    var params = bd_composite_params()
    params.threshold = 0.5
    params.background = BD_BACKGROUND_NONE
    let frameBytes = w * h * 3 / 2
    var input = [UInt8](data)
    var output = [UInt8](repeating: 0, count: w * h * 5 / 2 * batch)
    var start = 0
    try input.withUnsafeMutableBufferPointer { source in
      try output.withUnsafeMutableBufferPointer { target in
        var index = 0
        while index < count {
          let n = min(batch, count - index)
          var inputs = [bd_frame](repeating: bd_frame(), count: n)
          var outputs = [bd_frame](repeating: bd_frame(), count: n)
          for k in 0..<n {
            let i = source.baseAddress! + (index + k) * frameBytes
            inputs[k].planes = (i, i + w * h, i + w * h + w * h / 4, nil)
            inputs[k].strides = (Int32(w), Int32(w / 2), Int32(w / 2), 0)
            let o = target.baseAddress! + k * (w * h * 5 / 2)
            outputs[k].planes = (o, o + w * h, o + w * h + w * h / 4, o + w * h * 3 / 2)
            outputs[k].strides = (Int32(w), Int32(w / 2), Int32(w / 2), Int32(w))
          }
          do { try session.process(inputs: inputs, outputs: outputs, params: params) } catch {
            throw LauncherError.failed("engine: \((error as? EngineCallError)?.message ?? "\(error)")")
          }
          index += n
          if start == 0 { start = g_get_monotonic_time() }  // after the first batch
        }
      }
    }
    return Double(count - batch) / (Double(g_get_monotonic_time() - start) / 1e6)
  }
}


/// BiRefNet weights by the fixtures' bdrand rule (Tests/Fixtures/birefnet/README.md) for every key
/// of a manifest, written as safetensors by the rule's one implementation (CBDRand).
enum BDRand {
  static func writeWeights(manifest: URL, to output: URL) throws {
    guard let data = FileManager.default.contents(atPath: manifest.path),
      let json = try JSONSerialization.jsonObject(with: data) as? [String: Any],
      let keys = json["keys"] as? [[String: Any]]
    else { throw LauncherError.data("cannot read \(manifest.path)") }
    // The specs point at C strings that must outlive the call: keep them in one array of buffers.
    let names = keys.map { strdup($0["key"] as? String ?? "") }
    let i64Name = strdup("I64"), f32Name = strdup("F32")
    defer { (names + [i64Name, f32Name]).forEach { free($0) } }
    var specs = [bdr_tensor_spec]()
    for (key, name) in zip(keys, names) {
      var spec = bdr_tensor_spec()
      spec.key = UnsafePointer(name)
      spec.dtype = UnsafePointer((key["dtype"] as? String) == "int64" ? i64Name : f32Name)
      let shape = (key["shape"] as? [NSNumber] ?? []).map(\.int64Value)
      spec.ndim = Int32(shape.count)
      withUnsafeMutableBytes(of: &spec.shape) { raw in
        for (d, extent) in shape.prefix(8).enumerated() { raw.storeBytes(of: extent, toByteOffset: d * 8, as: Int64.self) }
      }
      spec.fill = BDR_FILL_BDRAND
      specs.append(spec)
    }
    var error = [CChar](repeating: 0, count: 512)
    let status = bdr_write_safetensors(output.path, specs, specs.count, nil, &error, error.count)
    guard status == 0 else {
      throw LauncherError.cannotCreate("cannot write \(output.path): \(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
    }
  }
}
