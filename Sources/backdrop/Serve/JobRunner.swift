// Runs one job of `backdrop serve` in this process: the same GStreamer pipelines `backdrop compose`
// builds (ComposeGraph), one pass per requested output, on the calling thread. A failing pipeline
// fails its job only; a cancel sets the pipeline to NULL at the next bus poll.
import CGStreamer
import Foundation
import Synchronization

/// Live progress of a running job, written by the runner and read by HTTP handlers.
struct JobProgress: Sendable, Equatable {
  var frames = 0
  var totalFrames: Int?
  var percent = 0.0
  var fps = 0.0
  var etaSeconds: Double?
}

final class JobRunner: @unchecked Sendable {
  enum Outcome: Equatable { case done, failed(String), cancelled }

  let input: String
  let folder: URL
  let options: JobOptions
  let cancelled = Atomic<Bool>(false)
  private let progressState = Mutex(JobProgress())

  var progress: JobProgress { progressState.withLock { $0 } }

  let extraModels: [String: String]

  init(input: String, folder: URL, options: JobOptions, extraModels: [String: String]) {
    self.extraModels = extraModels
    self.input = input
    self.folder = folder
    self.options = options
  }

  /// Output file names in a job's folder.
  static func fileName(_ kind: String) -> String { kind == "webm" ? "transparent.webm" : "composite.mp4" }
  static let backdropImageName = "backdrop-image"

  /// Runs every pass; `wrote` is told of each output file once it is complete.
  func run(wrote: (String) -> Void) -> Outcome {
    do {
      let media = try MediaInfo.probe(input)
      let model = try resolveServeModel(options.model, extraModels: extraModels)
      var matte = try MatteOptions.parse([])
      matte.soft = options.matte == "soft"
      let properties = try matte.properties(model: model, device: "auto")
      var passes: [(kind: String, container: Compose.Container, backdrop: Background)] = []
      if options.webm { passes.append(("webm", .webm, .none)) }
      if options.mp4 {
        let backdrop = options.background == "image"
          ? Background.image(folder.appendingPathComponent(Self.backdropImageName).path)
          : try Background.parse(options.background)
        passes.append(("mp4", .mp4, backdrop))
      }
      let total = media.frameDurationNs.flatMap { frame in media.durationNs.map { Int((Double($0) / Double(frame)).rounded()) } }
      progressState.withLock { $0.totalFrames = total }
      let start = Date()
      for (index, pass) in passes.enumerated() {
        let graph = ComposeGraph(
          input: input, container: pass.container, alpha: pass.container == .webm, matteOnly: false,
          backdrop: pass.backdrop, matteProperties: properties, hasAudio: media.hasAudio, width: media.width,
          height: media.height, framerate: media.framerate, withPreview: false, pixelAspect: media.pixelAspect)
        let target = folder.appendingPathComponent(Self.fileName(pass.kind)).path
        let partial = target + ".partial"
        let outcome = runPass(graph.description(output: partial, preview: nil), durationNs: media.durationNs) { frames, positionNs in
          let fraction = media.durationNs.map { $0 > 0 ? min(1, Double(positionNs) / Double($0)) : 0 } ?? 0
          let overall = (Double(index) + fraction) / Double(passes.count)
          let elapsed = Date().timeIntervalSince(start)
          progressState.withLock {
            $0.frames = frames
            $0.percent = max($0.percent, (overall * 1000).rounded() / 10)
            $0.fps = elapsed > 0 ? ((Double(frames + index * (total ?? frames)) / elapsed) * 10).rounded() / 10 : 0
            $0.etaSeconds = overall > 0.001 ? (elapsed * (1 - overall) / overall).rounded() : nil
          }
        }
        if outcome != .done {
          unlink(partial)
          return outcome
        }
        guard rename(partial, target) == 0 else { return .failed("cannot keep \(Self.fileName(pass.kind)): \(String(cString: strerror(errno)))") }
        wrote(pass.kind)
      }
      progressState.withLock {
        $0.percent = 100
        $0.etaSeconds = 0
      }
      return .done
    } catch let error as LauncherError {
      return .failed(error.message)
    } catch {
      return .failed("\(error)")
    }
  }

  private func runPass(_ description: String, durationNs: UInt64?, update: (Int, UInt64) -> Void) -> Outcome {
    let pipeline: Pipeline
    do { pipeline = try Pipeline(description) } catch let error as LauncherError { return .failed(error.message) } catch {
      return .failed("\(error)")
    }
    let counter = FrameCounter()
    if let matte = pipeline.child("matte") {
      counter.attach(to: matte)
      gst_object_unref(matte)
    }
    defer { gst_element_set_state(pipeline.element, GST_STATE_NULL) }
    let outcome = pipeline.run(tickInterval: 0.1, stop: { cancelled.load(ordering: .relaxed) }) {
      let now = counter.snapshot
      update(now.frames, now.endNs)
    }
    switch outcome {
    case .eos:
      let done = counter.snapshot
      update(done.frames, durationNs ?? done.endNs)
      return .done
    case .error(let text): return .failed(text)
    case .aborted, .timedOut: return .cancelled
    }
  }
}
