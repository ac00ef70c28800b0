// matte-bench: how much the GStreamer element costs on top of the engine, and what 1080p pre- and
// post-processing costs next to inference. Release build:
//
//   swift build -c release && .build/release/matte-bench [--model FILE] [--frames N] [--batch N]
//        [--width W --height H] [--size S] [--birefnet FILE] [--overlap-only yes]
//
// In one run, on the same frames:
//   1. engine alone: bd_session_process on batches of in-memory RGBA frames;
//   2. element: filesrc ! rawvideoparse ! birefnetmatte ! fakesink over the same frames;
//   3. pre+post: the luma-key model (whose forward is almost free) at W×H vs at S×S input, so the
//      difference is the cost of converting, resizing and compositing full frames;
//   4. with --birefnet (weights such as birefnet-bench writes): its inference time at S×S, and the
//      ratio pre+post ÷ inference (target ≤ 0.03 for BiRefNet-lite at 512², DESIGN §8);
//   5. the temporal stage (issue 9) per 1080p and 4K frame: small grey image, DIS optical flow,
//      warp + blend, next to the model's own time, for --temporal-model (default: selfie at 256²)
//      and --birefnet; engine time with the stage off and on (TemporalBench.swift);
//   6. the inference thread (issue 14): a VP9 clip decoded → birefnetmatte → vp9alphaenc with
//      inference-queue=0 and with the default, fps and their ratio (OverlapBench.swift; selfie at
//      256² when set up, else the luma key; --overlap-width/-height/-frames/-rounds/-threads,
//      --overlap-only).
import BackdropEngineClient
import CBackdropEngineABI
import CBackdropShim
import CGStreamer
import GstBackdrop
import Glibc

// No Foundation: release builds link the Swift runtime statically, and a static Foundation does
// not link here.
func now() -> Double {
  var t = timespec()
  clock_gettime(CLOCK_MONOTONIC, &t)
  return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

func fixed(_ value: Double, _ digits: Int) -> String {
  var scale = 1.0
  for _ in 0..<digits { scale *= 10 }
  let scaled = (value * scale).rounded()
  let whole = Int(scaled / scale)
  if digits == 0 { return String(whole) }
  let fraction = Int(abs(scaled) - Double(abs(whole)) * scale)
  let text = String(fraction)
  return (scaled < 0 && whole == 0 ? "-" : "") + String(whole) + "." + String(repeating: "0", count: max(0, digits - text.count)) + text
}

func padded(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }

/// The designed luma-key model of this repository (models/designed).
let lumakeyPath: String = {
  var path = #filePath
  for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
  return path + "/models/designed/lumakey.pt"
}()

struct Options {
  var model = ""
  var frames = 16
  var batch = 4
  var width = 1920
  var height = 1080
  var size = 512
  var birefnet: String? = nil
  var temporalModel: String? = nil
  var temporalSize = 256
  var temporalOnly = false
  var overlapWidth = 640
  var overlapHeight = 360
  var overlapFrames = 90
  var overlapRounds = 2
  var overlapOnly = false
  var overlapThreads = 0
}

func parseOptions() -> Options {
  var options = Options()
  var arguments = CommandLine.arguments.dropFirst().makeIterator()
  while let argument = arguments.next() {
    let value = arguments.next() ?? ""
    switch argument {
    case "--model": options.model = value
    case "--frames": options.frames = Int(value) ?? options.frames
    case "--batch": options.batch = Int(value) ?? options.batch
    case "--width": options.width = Int(value) ?? options.width
    case "--height": options.height = Int(value) ?? options.height
    case "--size": options.size = Int(value) ?? options.size
    case "--birefnet": options.birefnet = value
    case "--temporal-model": options.temporalModel = value
    case "--temporal-size": options.temporalSize = Int(value) ?? options.temporalSize
    case "--temporal-only": options.temporalOnly = value == "yes" || value == "1" || value == "true"
    case "--overlap-width": options.overlapWidth = Int(value) ?? options.overlapWidth
    case "--overlap-height": options.overlapHeight = Int(value) ?? options.overlapHeight
    case "--overlap-frames": options.overlapFrames = Int(value) ?? options.overlapFrames
    case "--overlap-rounds": options.overlapRounds = Int(value) ?? options.overlapRounds
    case "--overlap-threads": options.overlapThreads = Int(value) ?? options.overlapThreads
    case "--overlap-only": options.overlapOnly = value == "yes" || value == "1" || value == "true"
    default:
      print("unknown option \(argument)")
      exit(2)
    }
  }
  if options.model.isEmpty {
    options.model = lumakeyPath
  }
  return options
}

/// The engine as the element uses it (BackdropEngineClient's EngineLibrary/EngineModel/EngineSession),
/// without GStreamer in between.
struct Engine {
  let library: EngineLibrary

  init() {
    do {
      library = try EngineLibrary.load(explicitPath: nil, besideFile: pluginFilePath())
    } catch {
      fatalError(error.message)
    }
  }

  var path: String { library.path }

  /// Seconds per frame for `frames` RGBA frames of width×height processed in batches. `probe` sees
  /// the session before and after the timed batches.
  func secondsPerFrame(model path: String, frames: [[UInt8]], width: Int, height: Int, size: Int, batch: Int,
                       params custom: bd_composite_params? = nil, probe: ((EngineSession, Bool) -> Void)? = nil) -> Double {
    let model: EngineModel
    let session: EngineSession
    do {
      var options = bd_model_options()
      options.device = BD_DEVICE_CPU
      model = try path.withCString { cPath throws(EngineCallError) -> EngineModel in
        options.path = cPath
        return try EngineModel(library: library, options: options)
      }
      var config = bd_session_config()
      config.width = Int32(width); config.height = Int32(height)
      config.input_format = BD_FORMAT_RGBA; config.output_format = BD_FORMAT_RGBA
      config.inference_width = Int32(size); config.inference_height = Int32(size)
      config.max_batch = Int32(batch)
      session = try EngineSession(model: model, config: config)
    } catch {
      fatalError("model \(path): \((error as? EngineCallError)?.message ?? "\(error)")")
    }
    var params = custom ?? bd_composite_params()
    params.threshold = 0.5
    // Stable buffers for the frames the engine reads and writes.
    let frameBytes = width * height * 4
    let inputs = UnsafeMutablePointer<UInt8>.allocate(capacity: frameBytes * frames.count)
    let outputs = UnsafeMutablePointer<UInt8>.allocate(capacity: frameBytes * frames.count)
    defer { inputs.deallocate(); outputs.deallocate() }
    for (i, frame) in frames.enumerated() { (inputs + i * frameBytes).update(from: frame, count: frameBytes) }
    func run(_ first: Int, _ count: Int) {
      var inFrames: [bd_frame] = [], outFrames: [bd_frame] = []
      for i in first..<(first + count) {
        var a = bd_frame(), b = bd_frame()
        a.planes.0 = inputs + i * frameBytes
        a.strides.0 = Int32(width * 4)
        b.planes.0 = outputs + i * frameBytes
        b.strides.0 = Int32(width * 4)
        inFrames.append(a); outFrames.append(b)
      }
      do {
        try session.process(inputs: inFrames, outputs: outFrames, params: params)
      } catch {
        fatalError(error.message)
      }
    }
    run(0, min(batch, frames.count))  // warm-up: first-call allocations
    probe?(session, false)
    let start = now()
    var index = 0
    while index < frames.count {
      let count = min(batch, frames.count - index)
      run(index, count)
      index += count
    }
    let seconds = (now() - start) / Double(frames.count)
    probe?(session, true)
    return seconds
  }
}

/// A bright disc moving over a dark gradient: half foreground, half background for the luma key.
func makeFrames(_ count: Int, width: Int, height: Int) -> [[UInt8]] {
  (0..<count).map { n in
    var bytes = [UInt8](repeating: 255, count: width * height * 4)
    let cx = width / 4 + n * width / (2 * max(count, 1)), cy = height / 2, r = height / 3
    for y in 0..<height {
      for x in 0..<width {
        let i = (y * width + x) * 4
        let inside = (x - cx) * (x - cx) + (y - cy) * (y - cy) < r * r
        let v = UInt8(inside ? 230 : 20 + (x * 60) / width)
        bytes[i] = v; bytes[i + 1] = v; bytes[i + 2] = inside ? 200 : v
      }
    }
    return bytes
  }
}

/// Frames per second of birefnetmatte inside a pipeline over the same frames, read from a file.
func elementFramesPerSecond(model: String, frames: [[UInt8]], width: Int, height: Int, size: Int, batch: Int) -> Double {
  let file = "/tmp/matte-bench-\(getpid()).rgba"
  defer { unlink(file) }
  let handle = fopen(file, "wb")!
  for frame in frames { _ = frame.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, handle) } }
  fclose(handle)
  let description = "filesrc location=\(file) blocksize=\(width * height * 4) ! "
    + "rawvideoparse format=rgba width=\(width) height=\(height) framerate=30/1 ! "
    + "birefnetmatte model-file=\(model) device=cpu batch-size=\(batch) inference-width=\(size) inference-height=\(size) "
    + "temporal-smooth=0 ! "  // as in the engine rows: the temporal stage off
    + "video/x-raw,format=RGBA ! fakesink sync=false"
  func runOnce() -> Double {
    var parseError: UnsafeMutablePointer<GError>?
    guard let pipeline = gst_parse_launch(description, &parseError), parseError == nil else { fatalError("pipeline: \(description)") }
    defer { gst_element_set_state(pipeline, GST_STATE_NULL); gst_object_unref(pipeline) }
    let bus = gst_element_get_bus(pipeline)!
    defer { gst_object_unref(bus) }
    let start = now()
    gst_element_set_state(pipeline, GST_STATE_PLAYING)
    let message = gst_bus_timed_pop_filtered(bus, UInt.max, GstMessageType(rawValue: GST_MESSAGE_EOS.rawValue | GST_MESSAGE_ERROR.rawValue))!
    defer { gst_message_unref(message) }
    if message.pointee.type == GST_MESSAGE_ERROR { fatalError("pipeline failed: \(description)") }
    return now() - start
  }
  _ = runOnce()  // warm-up: engine load, model cache, page cache
  return Double(frames.count) / runOnce()
}

let options = parseOptions()
gst_init(nil, nil)
gst_plugin_backdrop_register()
let engine = Engine()
setenv("BACKDROP_ENGINE", engine.path, 1)
let threads = sysconf(Int32(_SC_NPROCESSORS_ONLN))
print("matte-bench: \(options.frames) frames \(options.width)x\(options.height) RGBA → RGBA, batch \(options.batch), inference \(options.size)², CPU, \(threads) threads")
print("model: \(options.model)")
if options.temporalOnly {
  runTemporalBench(engine: engine, options: options)
  exit(0)
}
if options.overlapOnly {
  runOverlapBench(options: options)
  exit(0)
}
let frames = makeFrames(options.frames, width: options.width, height: options.height)

// Interleaved rounds, best of each: the machine is shared and noisy.
var engineSeconds = Double.infinity
var elementFPS = 0.0
for _ in 0..<2 {
  engineSeconds = min(engineSeconds, engine.secondsPerFrame(model: options.model, frames: frames, width: options.width, height: options.height, size: options.size, batch: options.batch))
  elementFPS = max(elementFPS, elementFramesPerSecond(model: options.model, frames: frames, width: options.width, height: options.height, size: options.size, batch: options.batch))
}
let engineFPS = 1 / engineSeconds
print("engine alone           : \(padded(fixed(engineFPS, 2), 8)) fps  (\(fixed(engineSeconds * 1000, 1)) ms/frame)")
print("element in a pipeline  : \(padded(fixed(elementFPS, 2), 8)) fps  (\(fixed(1000 / elementFPS, 1)) ms/frame)")
print("ratio element / engine : \(padded(fixed(elementFPS / engineFPS, 3), 8))  (target >= 0.97)")

let lumakey = lumakeyPath
let small = makeFrames(options.frames, width: options.size, height: options.size)
let full = engine.secondsPerFrame(model: lumakey, frames: frames, width: options.width, height: options.height, size: options.size, batch: options.batch)
let native = engine.secondsPerFrame(model: lumakey, frames: small, width: options.size, height: options.size, size: options.size, batch: options.batch)
let prepost = max(0, full - native)
print("pre+post \(options.width)x\(options.height)     : \(padded(fixed(prepost * 1000, 1), 8)) ms/frame (luma key at \(options.width)x\(options.height) \(fixed(full * 1000, 1)) ms minus at \(options.size)² \(fixed(native * 1000, 1)) ms)")
if let birefnet = options.birefnet {
  let inference = engine.secondsPerFrame(model: birefnet, frames: Array(small.prefix(options.batch)), width: options.size, height: options.size, size: options.size, batch: options.batch)
  print("BiRefNet inference \(options.size)²: \(padded(fixed(inference * 1000, 1), 8)) ms/frame")
  print("ratio pre+post / inference: \(fixed(prepost / inference, 4))  (target <= 0.03)")
} else {
  print("BiRefNet inference: skipped (give --birefnet FILE, e.g. weights written by birefnet-bench)")
}

runTemporalBench(engine: engine, options: options)
runOverlapBench(options: options)
