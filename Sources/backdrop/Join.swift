// backdrop join: the parts of `compose --segment K/N` back into one file without re-encoding.
// Each part names its clip and range in its title; the pieces must be of the output's container,
// of one clip, of one kind (caps), and tile the clip without gaps or overlaps, or nothing is
// written (JoinPieces). The coded frames (VP9 with alpha as GstVideoCodecAlphaMeta from
// matroskademux, ProRes 4444 or H.264 from qtdemux) and the audio packets go through `concat`
// into the container's muxer, each part shifted to its range's start, so the result has
// continuous timestamps and one index and duration (Cues and Duration, or moov).
import ArgumentParser
import CGStreamer
import Foundation

struct Join: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Join the parts written by `compose --segment K/N` into one file, without re-encoding.",
    discussion: """
      The pieces may be given in any order; they are put in the order of their ranges. They are \
      joined into a file of their own container: transparent WebM parts into .webm, ProRes 4444 \
      parts into .mov, H.264 parts into .mp4. A piece from another clip, a missing piece, \
      overlapping pieces, a piece of another container or with different size or codec settings \
      are refused with a message naming the piece, and no output is written.
      """)

  @Argument(help: "The parts (.webm, .mov or .mp4 files written by `backdrop compose --segment`).")
  var pieces: [String]

  @Option(name: .shortAndLong, help: "The joined file: .webm, .mov or .mp4, as the parts.")
  var output: String

  @OptionGroup var outputOptions: OutputOptions

  func run() throws {
    try reportingErrors(json: outputOptions.json) { try join() }
  }

  private func join() throws {
    guard !pieces.isEmpty else { throw LauncherError.usage("give the parts to join") }
    let target = try OutputTarget(output, allowed: ["webm", "mov", "mp4"])
    let container = PartContainer(rawValue: target.fileExtension)!
    let paths = pieces.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
    for path in paths {
      try checkInput(path)
      if path == target.path { throw LauncherError.usage("the output would overwrite the piece \(path)") }
    }
    try GStreamer.setUp()
    let parts = try paths.map(JoinPiece.read)
    let ordered = try JoinPiece.checkedOrder(parts, container: container, output: target.path)
    try target.checkWritable()

    var description = "concat name=vc adjust-base=false ! queue ! mux.video_0  \(container.muxer) ! filesink location=\(gstQuote(target.temporaryPath))"
    let hasAudio = ordered[0].audioCaps != nil
    if hasAudio { description += "  concat name=ac adjust-base=false ! queue ! mux.audio_0" }
    // The queues are linked to concat in the order of the ranges (concat plays its pads in the
    // order they were requested); the demuxers' pads are linked to them once they appear.
    for k in ordered.indices { description += "  queue name=vq\(k) ! vc." }
    if hasAudio { for k in ordered.indices { description += "  queue name=aq\(k) ! ac." } }
    for (k, piece) in ordered.enumerated() {
      description += "  filesrc location=\(gstQuote(piece.path)) ! \(container.demuxer) name=d\(k)  d\(k).video_0 ! vq\(k)."
      if hasAudio { description += "  d\(k).audio_0 ! aq\(k)." }
    }
    let pipeline: Pipeline
    do { pipeline = try Pipeline(description) } catch { target.removeTemporary(); throw error }
    if let mux = pipeline.child("mux") {
      MuxerTags.ignoreStreamTags(on: mux)
      gst_object_unref(mux)
    }
    // Each part's running time moves to its range's start: its first frame lands where the range
    // begins (plus a common shift so that no offset is negative; the muxer starts the file at 0).
    let shift = ordered.map(\.firstVideoNs).max() ?? 0
    for (k, piece) in ordered.enumerated() {
      let offset = Int64(piece.title.startNs) - Int64(piece.firstVideoNs) + Int64(shift)
      for name in ["vq\(k)"] + (hasAudio ? ["aq\(k)"] : []) {
        guard let queue = pipeline.child(name) else { continue }
        if let pad = gst_element_get_static_pad(queue, "src") {
          gst_pad_set_offset(pad, gint64(offset))
          gst_object_unref(pad)
        }
        gst_object_unref(queue)
      }
    }
    let counter = FrameCounter()
    if let concat = pipeline.child("vc") {
      counter.attach(to: concat)
      gst_object_unref(concat)
    }
    let expected = ordered.reduce(0) { $0 + $1.title.frames }
    let progress = ProgressReporter(options: outputOptions, durationNs: nil, frameDurationNs: nil)
    progress.started(input: ordered.map(\.path).joined(separator: " "), output: target.path, pipeline: description)
    let outcome = pipeline.run(warning: { progress.warning($0) }, tick: {
      let now = counter.snapshot
      progress.update(frames: now.frames, positionNs: now.endNs)
    })
    gst_element_set_state(pipeline.element, GST_STATE_NULL)
    switch outcome {
    case .eos:
      guard counter.frames == expected else {
        target.removeTemporary()
        throw LauncherError.data(
          "the pieces hold \(counter.frames) frames but their titles promise \(expected): a piece is truncated "
            + "(was a part interrupted?); nothing written")
      }
      try target.commit()
      progress.finished(frames: counter.frames, outputs: [(target.path, target.size())], interrupted: false)
    case .error(let text):
      target.removeTemporary()
      throw LauncherError.failed("joining failed: \(text)")
    case .aborted, .timedOut:
      target.removeTemporary()
      throw LauncherError.aborted("aborted: nothing written")
    }
  }
}
