// birefnetmatte's behaviour: start/stop of the engine, caps negotiation, batching, draining at
// serialized events, QoS, latency and the live batch timeout.
//
// Threading: `stream` is touched only with the sink pad's stream lock held (chain and serialized
// events hold it already; the batch-timeout callback takes it), except by the inference task,
// which runs the batches handed to it (see MatteInferenceWorker.swift for who touches what).
// Settings and the figures that queries read live in Mutexes, since property setters and queries
// come from other threads.
import BackdropEngineClient
import CBackdropEngineABI
import CBackdropShim
import CGStreamer
import Synchronization

/// Per-stream state, guarded by the sink pad's stream lock.
struct MatteStreamState {
  var inputInfo = GstVideoInfo()
  var outputInfo = GstVideoInfo()
  var inputCaps: UnsafeMutablePointer<GstCaps>? = nil
  var session: EngineSession? = nil
  var pending: [UnsafeMutablePointer<GstBuffer>] = []
  /// temporal-lookahead (MatteLookahead.swift): whether the session looks ahead, and the timestamps
  /// and flags (an empty buffer) of the frame it holds.
  var lookahead = false
  var held: UnsafeMutablePointer<GstBuffer>? = nil
  var segment = GstSegment()
  var batchSize = 1
  var backgroundImageKey: String? = nil
  /// What the last push downstream returned; a failure is handed upstream on the next buffer.
  /// Written by whoever runs batches (the inference task), read by the streaming thread.
  var lastFlow: GstFlowReturn {
    get { GstFlowReturn(rawValue: outcome.flow.load(ordering: .acquiring)) }
    nonmutating set { outcome.flow.store(newValue.rawValue, ordering: .releasing) }
  }
  /// Caps whose engine session could not be made (the ERROR was posted): refused again quietly,
  /// since upstream re-sends sticky caps with every buffer and every one would post it again.
  var refusedCaps: UnsafeMutablePointer<GstCaps>? = nil
  /// Inference failed and the ERROR was posted: later buffers fail quietly (one ERROR per stream).
  var failed: Bool {
    get { outcome.failed.load(ordering: .acquiring) }
    nonmutating set { outcome.failed.store(newValue, ordering: .releasing) }
  }
  let outcome = MatteBatchOutcome()
  /// The model's NaN output was reported for this stream (one WARNING per stream).
  var nanReported = false
  /// Output that looks like probabilities was reported for this stream (one WARNING per stream).
  var probabilityLikeReported = false
  /// Interlaced input was reported for this stream (one WARNING per stream).
  var warnedInterlaced = false
  /// CUDA memory (issue 14): the input caps are memory:CUDAMemory, and the output buffers' pool
  /// when the output caps are (nil: output buffers in system memory).
  var inputCuda = false
  var outputPool: UnsafeMutablePointer<GstBufferPool>? = nil
}

/// What batches end with, shared between the inference task and the streaming thread.
final class MatteBatchOutcome: Sendable {
  let flow = Atomic<Int32>(GST_FLOW_OK.rawValue)
  let failed = Atomic<Bool>(false)
}

/// What queries and the timeout read from other threads.
struct MatteSharedState {
  var live = false
  var frameDuration: UInt = 0  // ns, 0 when the framerate is unknown
  var batchSize = MatteSettings.defaultBatchSize
  var processingTime: UInt = 0  // ns, last measured batch
  var reportedProcessingTime: UInt = 0
  var earliestTime: UInt = GST_CLOCK_TIME_NONE_VALUE  // QoS: running time downstream wants next
  var processed: UInt = 0
  var dropped: UInt = 0
  var timeoutID: UInt = 0  // the pending GstClockID's address (0: none); an integer so it is Sendable
  var modelDescription: String? = nil
  var stats = MatteStatsTotals()  // counters for the read-only `stats` property
}

let GST_CLOCK_TIME_NONE_VALUE = UInt.max

final class MatteElement: @unchecked Sendable {
  let element: UnsafeMutablePointer<GstElement>
  let sinkPad: UnsafeMutablePointer<GstPad>
  let srcPad: UnsafeMutablePointer<GstPad>
  let settings = Mutex(MatteSettings())
  let shared = Mutex(MatteSharedState())
  let cuda = Mutex(MatteCudaState())
  /// The CUDA context offered to the pipeline at NULL→READY when the model will run on CUDA
  /// (MatteCudaMemory.swift).
  let readyCudaContext = Mutex(MatteReadyContext())
  var stream = MatteStreamState()  // sink pad stream lock
  var model: EngineModel? = nil  // set in start(), cleared in stop() (state-change thread)
  /// The queue to the inference task; nil with inference-queue=0 (batches run on the streaming
  /// thread). Set in start(), cleared in stop().
  var inferenceQueue: MatteInferenceQueue? = nil

  init(element: UnsafeMutablePointer<GstElement>) {
    self.element = element
    (sinkPad, srcPad) = makeMattePads(for: element)
    gst_segment_init(&stream.segment, GST_FORMAT_TIME)
  }

  var object: gpointer { UnsafeMutableRawPointer(element) }
  var gstObject: UnsafeMutablePointer<GstObject> { UnsafeMutableRawPointer(element).assumingMemoryBound(to: GstObject.self) }

  // MARK: properties

  func setProperty(_ property: MatteProperty, _ value: UnsafePointer<GValue>) {
    settings.withLock { $0.set(property, from: value) }
    matteDebug.debug(object, "property \(property) changed")
  }

  func getProperty(_ property: MatteProperty, _ value: UnsafeMutablePointer<GValue>) {
    if property == .stats { return setStatsValue(value) }
    let description = shared.withLock { $0.modelDescription }
    settings.withLock { $0.get(property, into: value, modelDescription: description) }
  }

  // MARK: state changes

  func changeState(_ transition: GstStateChange, parent: () -> GstStateChangeReturn) -> GstStateChangeReturn {
    if transition == GST_STATE_CHANGE_NULL_TO_READY {
      offerCudaContext()  // before upstream elements (they go to READY after us) make their own
    }
    if transition == GST_STATE_CHANGE_READY_TO_PAUSED && !start() {
      return GST_STATE_CHANGE_FAILURE
    }
    if transition == GST_STATE_CHANGE_PAUSED_TO_READY {
      stopInferenceTask()  // before the parent deactivates the pads, whose stream locks it holds
    }
    let result = parent()
    if transition == GST_STATE_CHANGE_READY_TO_PAUSED && result != GST_STATE_CHANGE_FAILURE && !startInferenceTask() {
      postError(element, .core, code: Int32(GST_CORE_ERROR_THREAD.rawValue),
                "birefnetmatte could not start its inference thread: set inference-queue=0 to run inference on the streaming thread.")
      return GST_STATE_CHANGE_FAILURE
    }
    if transition == GST_STATE_CHANGE_PAUSED_TO_READY {
      stop()
    }
    if transition == GST_STATE_CHANGE_READY_TO_NULL {
      releaseReadyCudaContext()
    }
    return result
  }

  /// Loads the engine and the model; every failure becomes an ERROR naming what to fix.
  func start() -> Bool {
    let current = settings.withLock { $0 }
    guard let modelFile = current.modelFile, !modelFile.isEmpty else {
      postError(element, .resource, code: ResourceError.notFound,
                "No model: set the model-file property to BiRefNet weights (.safetensors) or a TorchScript file.")
      return false
    }
    guard let (deviceKind, deviceIndex) = parseDevice(current.device) else {
      postError(element, .resource, code: ResourceError.settings,
                "Invalid device \"\(current.device)\": use auto, cpu, cuda or cuda:N.")
      return false
    }
    let library: EngineLibrary
    do {
      library = try EngineLibrary.load(explicitPath: current.engineLibrary, besideFile: pluginFilePath())
    } catch {
      postError(element, .library, code: LibraryError.initFailed, error.message)
      return false
    }
    matteDebug.info(object, "engine \(library.path): \(library.version)")
    var options = bd_model_options()
    var openedModel: EngineModel?
    let status: bd_status = modelFile.withCString { path in
      options.path = path
      options.device = deviceKind
      options.device_index = deviceIndex
      options.precision = bd_precision(rawValue: current.precision.rawValue)
      options.patch_order = bd_patch_order(rawValue: current.patchOrder.rawValue)
      options.threads = Int32(current.threads)
      do {
        openedModel = try EngineModel(library: library, options: options)
        return BD_OK
      } catch {
        let failure = error as! EngineCallError
        let code = failure.status == BD_ERR_DEVICE ? ResourceError.settings : ResourceError.openRead
        postError(element, .resource, code: code, failure.message, debug: "engine: \(library.path)")
        return failure.status
      }
    }
    guard status == BD_OK, let openedModel else { return false }
    model = openedModel
    if deviceKind == BD_DEVICE_AUTO && openedModel.info.device == BD_DEVICE_CPU {
      // An engine built without CUDA (Debian's libtorch) runs on the CPU by design: say so once,
      // as INFO. A CUDA engine that finds no GPU is a surprise worth a WARNING.
      if library.version.contains("CUDA: not built in") {
        postInfo(element, .resource, code: ResourceError.settings,
                 "device=auto: this engine is built without CUDA, running on the CPU.", debug: library.version)
      } else {
        postWarning(element, .resource, code: ResourceError.settings,
                    "device=auto: no CUDA device is available to the engine, running on the CPU.",
                    debug: library.version)
      }
    }
    let description = openedModel.description
    shared.withLock {
      $0 = MatteSharedState()
      $0.modelDescription = description
      $0.batchSize = current.batchSize
    }
    startCudaMemory(openedModel.info)
    inferenceQueue = current.inferenceQueue > 0 ? MatteInferenceQueue(capacity: current.inferenceQueue) : nil
    matteDebug.info(object, "model \(modelFile): \(description)")
    return true
  }

  func stop() {
    cancelBatchTimeout()
    bd_pad_stream_lock(sinkPad)
    dropPending()
    closeSessionStats()
    stream.session = nil
    if let caps = stream.inputCaps { gst_caps_unref(caps) }
    if let caps = stream.refusedCaps { gst_caps_unref(caps) }
    releasePool(stream.outputPool)
    stream = MatteStreamState()
    gst_segment_init(&stream.segment, GST_FORMAT_TIME)
    bd_pad_stream_unlock(sinkPad)
    stopCudaMemory()
    inferenceQueue = nil
    model = nil
  }

}

func formatName(_ info: GstVideoInfo) -> String {
  String(cString: gst_video_format_to_string(info.finfo.pointee.format))
}
