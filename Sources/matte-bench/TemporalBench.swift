// matte-bench, part 5: what the temporal stage (issue 9) costs per 1080p and 4K frame next to the
// model's own time. The engine runs the same frames with the stage off and on (default weight);
// the stage's own clocks (test-only bd_testing_session_temporal_timing) split its time into the
// small grey images, DIS optical flow (OpenCV, CPU, both directions) and warp + blend (torch).
import CBackdropEngineABI
import GstBackdrop
import Glibc

/// models/selfie/selfie.pt of this repository, when scripts/setup-models.sh made it.
let selfiePath: String = {
  var path = #filePath
  for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
  return path + "/models/selfie/selfie.pt"
}()

func runTemporalBench(engine: Engine, options: Options) {
  guard let library = dlopen(engine.path, RTLD_NOW | RTLD_NOLOAD),
    let symbol = dlsym(library, "bd_testing_session_temporal_timing")
  else {
    print("temporal stage: skipped (the engine has no bd_testing_session_temporal_timing)")
    return
  }
  let timingOf = unsafeBitCast(symbol, to: bd_testing_session_temporal_timing_fn.self)
  var models: [(String, String, Int)] = []
  if let path = options.temporalModel {
    models.append((path.split(separator: "/").last.map(String.init) ?? path, path, options.temporalSize))
  } else if access(selfiePath, R_OK) == 0 {
    models.append(("selfie", selfiePath, 256))
  } else {
    print("temporal stage: selfie not set up (scripts/setup-models.sh); using the luma key")
    models.append(("lumakey", lumakeyPath, 256))
  }
  if let birefnet = options.birefnet { models.append(("birefnet", birefnet, options.size)) }

  var on = bd_composite_params()
  on.temporal_smooth = 0.8
  on.scene_cut_threshold = 0.3
  let sizes = [(1920, 1080), (3840, 2160)]
  for (name, path, size) in models {
    print("")
    print("temporal stage: \(name) at \(size)², CPU, batch \(options.batch), ms per frame (best of 2)")
    print("  frame        model   grey   flow  warp+blend  stage total  stage/model   engine off   engine on")
    for (width, height) in sizes {
      let count = width > 2000 ? min(options.frames, 8) : options.frames
      let frames = makeFrames(count, width: width, height: height)
      var best = (model: Double.infinity, grey: 0.0, flow: 0.0, blend: 0.0, off: Double.infinity, on: Double.infinity)
      for _ in 0..<2 {
        var before = bd_testing_temporal_timing(), after = bd_testing_temporal_timing()
        let off = engine.secondsPerFrame(model: path, frames: frames, width: width, height: height, size: size, batch: options.batch)
        let withStage = engine.secondsPerFrame(
          model: path, frames: frames, width: width, height: height, size: size, batch: options.batch, params: on
        ) { session, done in
          if done { timingOf(session.handle, &after) } else { timingOf(session.handle, &before) }
        }
        let n = Double(after.frames - before.frames)
        let model = (after.model_ms - before.model_ms) / n
        if model < best.model {
          best = (model, (after.grey_ms - before.grey_ms) / n, (after.flow_ms - before.flow_ms) / n,
                  (after.blend_ms - before.blend_ms) / n, best.off, best.on)
        }
        best.off = min(best.off, off * 1000)
        best.on = min(best.on, withStage * 1000)
      }
      let stage = best.grey + best.flow + best.blend
      print("  \(padded("\(width)x\(height)", 9))  \(padded(fixed(best.model, 1), 7))  \(padded(fixed(best.grey, 1), 5))  "
            + "\(padded(fixed(best.flow, 1), 5))  \(padded(fixed(best.blend, 1), 10))  \(padded(fixed(stage, 1), 11))  "
            + "\(padded(fixed(stage / best.model, 2), 11))  \(padded(fixed(best.off, 1), 11))  \(padded(fixed(best.on, 1), 10))")
    }
  }
}
