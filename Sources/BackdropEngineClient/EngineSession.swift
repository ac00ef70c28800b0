// Swift owners of the engine's model and session handles (freed exactly once, on deinit).
import CBackdropEngineABI

/// A model opened through the engine (the engine shares the weights between instances).
public final class EngineModel: @unchecked Sendable {
  // The handle is immutable after open and the engine's model object is thread-safe.
  package let library: EngineLibrary
  package let handle: OpaquePointer
  public let info: bd_model_info

  public init(library: EngineLibrary, options: bd_model_options) throws(EngineCallError) {
    var options = options
    var handle: OpaquePointer?
    try withEngineError { library.modelOpen(&options, &handle, $0, $1) }
    self.library = library
    self.handle = handle!
    var info = bd_model_info()
    library.modelGetInfo(handle, &info)
    self.info = info
  }

  public var description: String {
    withUnsafeBytes(of: info.description) { raw in
      String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
  }

  deinit { library.modelRelease(handle) }
}

/// One stream's processing state in the engine: geometry, formats and buffers.
public final class EngineSession: @unchecked Sendable {
  // Used only from the element's streaming thread (under the sink pad's stream lock).
  public let model: EngineModel
  package let handle: OpaquePointer

  public init(model: EngineModel, config: bd_session_config) throws(EngineCallError) {
    var config = config
    var handle: OpaquePointer?
    try withEngineError { model.library.sessionCreate(model.handle, &config, &handle, $0, $1) }
    self.model = model
    self.handle = handle!
  }

  public func setBackgroundImage(rgb: UnsafePointer<UInt8>, stride: Int32, width: Int32, height: Int32)
    throws(EngineCallError)
  {
    try withEngineError {
      model.library.sessionSetBackgroundImage(handle, rgb, stride, width, height, $0, $1)
    }
  }

  public func process(inputs: [bd_frame], outputs: [bd_frame], params: bd_composite_params)
    throws(EngineCallError)
  {
    var params = params
    try withEngineError { errorBuffer, errorLength in
      inputs.withUnsafeBufferPointer { inputFrames in
        outputs.withUnsafeBufferPointer { outputFrames in
          model.library.sessionProcess(
            handle, inputFrames.baseAddress, outputFrames.baseAddress, Int32(inputs.count),
            &params, errorBuffer, errorLength)
        }
      }
    }
  }

  /// temporal_lookahead: writes the held frame into `output`; false when none was held.
  public func drain(output: bd_frame, params: bd_composite_params) throws(EngineCallError) -> Bool {
    var output = output
    var params = params
    var written: Int32 = 0
    try withEngineError { model.library.sessionDrain(handle, &output, &params, &written, $0, $1) }
    return written == 1
  }

  /// Counters since the session was created (frames inferred, skipped, NaN output).
  public var stats: bd_session_stats {
    var stats = bd_session_stats()
    model.library.sessionGetStats(handle, &stats)
    return stats
  }

  /// Forgets the state carried across batches (FLUSH, DISCONT, caps changes).
  public func reset() { model.library.sessionReset(handle) }

  deinit { model.library.sessionDestroy(handle) }
}
