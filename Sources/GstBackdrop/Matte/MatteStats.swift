// birefnetmatte's read-only `stats` property (issue 9): the engine session's counters of frames
// inferred, skipped (matte carried by optical flow) and scene cuts, summed over every session the
// element made since it started (caps changes make a new session).
import BackdropEngineClient
import CBackdropEngineABI
import CGStreamer

extension bd_session_stats {
  static func + (a: bd_session_stats, b: bd_session_stats) -> bd_session_stats {
    var sum = bd_session_stats()
    sum.frames = a.frames + b.frames
    sum.frames_inferred = a.frames_inferred + b.frames_inferred
    sum.frames_skipped = a.frames_skipped + b.frames_skipped
    sum.scene_cuts = a.scene_cuts + b.scene_cuts
    sum.nan_frames = a.nan_frames + b.nan_frames
    sum.nan_pixels = a.nan_pixels + b.nan_pixels
    return sum
  }
}

/// Counters of sessions already closed plus the latest snapshot of the current one.
struct MatteStatsTotals {
  var closed = bd_session_stats()
  var current = bd_session_stats()
  var total: bd_session_stats { closed + current }
}

extension MatteElement {
  /// After a batch (streaming thread): copies the session's counters, so that the property can be
  /// read from any thread without touching the engine.
  func recordSessionStats(_ session: EngineSession) -> bd_session_stats {
    let snapshot = session.stats
    shared.withLock { $0.stats.current = snapshot }
    return snapshot
  }

  /// Before the session is replaced or dropped: keeps its counters in the total.
  func closeSessionStats() {
    shared.withLock {
      $0.stats.closed = $0.stats.total
      $0.stats.current = bd_session_stats()
    }
  }

  /// `stats, frames=(guint64)…, inferred=(guint64)…, skipped=(guint64)…, scene-cuts=(guint64)…`
  func setStatsValue(_ value: UnsafeMutablePointer<GValue>) {
    let stats = shared.withLock { $0.stats.total }
    let structure = gst_structure_new_empty("stats")!
    let uint64Type = g_type_from_name("guint64")
    for (name, count) in [("frames", stats.frames), ("inferred", stats.frames_inferred),
                          ("skipped", stats.frames_skipped), ("scene-cuts", stats.scene_cuts)] {
      var field = GValue()
      g_value_init(&field, uint64Type)
      g_value_set_uint64(&field, guint64(count))
      gst_structure_take_value(structure, name, &field)
    }
    g_value_take_boxed(value, structure)
  }
}
