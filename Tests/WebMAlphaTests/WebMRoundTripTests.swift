// vp9alphaenc ! webmalphamux ! filesink, decoded back with ffmpeg (libvpx-vp9) and GStreamer;
// mkvinfo, seeking, plain VP9, vp9parse in front, audio, timestamps, streamable output.
import CBackdropShim
import CGStreamer
import Foundation
import XCTest

final class WebMRoundTripTests: XCTestCase {
  static let pattern = AlphaPattern(width: 320, height: 240, frames: 45)
  nonisolated(unsafe) static var workDirectory: URL!
  nonisolated(unsafe) static var rawClip: URL!

  override class func setUp() {
    super.setUp()
    XCTAssertTrue(WebMTestEnvironment.ready)
    workDirectory = try! WebMTestEnvironment.temporaryDirectory("roundtrip")
    rawClip = workDirectory.appendingPathComponent("pattern.a420")
    try! pattern.write(to: rawClip)
  }

  override class func tearDown() {
    try? FileManager.default.removeItem(at: workDirectory)
    super.tearDown()
  }

  var pattern: AlphaPattern { Self.pattern }

  func output(_ name: String) -> String { Self.workDirectory.appendingPathComponent(name).path }

  /// Encodes the pattern (keyframes every 15 frames) to `path`, muxing `extra` branches too.
  func encode(to path: String, encoder: String = "vp9alphaenc keyframe-max-dist=15", mux: String = "webmalphamux name=mux",
              between: String = "", extra: String = "") -> PipelineOutcome {
    let description = "\(pattern.rawVideoSource(Self.rawClip.path)) ! \(encoder) \(between) ! \(mux) ! filesink location=\(path) \(extra)"
    return runPipeline(description)
  }

  func requireTool(_ name: String) throws -> String {
    guard let path = WebMTestEnvironment.which(name) else {
      print("SKIP: \(name) is not installed (apt-get install ffmpeg mkvtoolnix)")
      throw XCTSkip("\(name) is not installed")
    }
    return path
  }

  /// ffmpeg decode with libvpx-vp9 (which reads the alpha BlockAdditions) to raw RGBA.
  func ffmpegDecode(_ path: String, extraInput: [String] = []) throws -> Data {
    let ffmpeg = try requireTool("ffmpeg")
    let raw = path + ".ff.rgba"
    let result = try runProcess(ffmpeg, ["-v", "error", "-y", "-c:v", "libvpx-vp9"] + extraInput + ["-i", path, "-map", "0:v", "-f", "rawvideo", "-pix_fmt", "rgba", raw])
    XCTAssertEqual(result.status, 0, "ffmpeg: \(result.stderr)")
    return (try? Data(contentsOf: URL(fileURLWithPath: raw))) ?? Data()
  }

  func gstreamerDecode(_ path: String) -> Data {
    let raw = path + ".gst.rgba"
    let outcome = runPipeline("filesrc location=\(path) ! decodebin ! videoconvert ! video/x-raw,format=RGBA ! filesink location=\(raw)")
    XCTAssertNil(outcome.error, "decodebin: \(outcome.error ?? "")")
    return (try? Data(contentsOf: URL(fileURLWithPath: raw))) ?? Data()
  }

  func ffprobe(_ path: String, _ entries: String, stream: String = "v:0") throws -> [String: String] {
    let probe = try requireTool("ffprobe")
    let result = try runProcess(probe, ["-v", "error", "-select_streams", stream, "-count_frames", "-show_entries", entries, "-of", "default=noprint_wrappers=1", path])
    XCTAssertEqual(result.status, 0, result.stderr)
    var values: [String: String] = [:]
    for line in result.stdout.split(separator: "\n") {
      let parts = line.split(separator: "=", maxSplits: 1)
      if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
    }
    return values
  }

  // MARK: tests

  func testRoundTripAlphaThroughFFmpegAndDecodebin() throws {
    let path = output("roundtrip.webm")
    let outcome = encode(to: path)
    XCTAssertNil(outcome.error, outcome.error ?? "")

    // (a) ffmpeg with libvpx-vp9, (b) GStreamer decodebin (vp9alphadecodebin inside).
    assertAlphaMatches(try ffmpegDecode(path), pattern, frames: 45, maxMeanError: 1.0, "ffmpeg libvpx-vp9")
    assertAlphaMatches(gstreamerDecode(path), pattern, frames: 45, maxMeanError: 1.0, "GStreamer decodebin")

    let probe = try ffprobe(path, "stream=nb_read_frames,width,height,r_frame_rate:stream_tags=alpha_mode:format=duration")
    XCTAssertEqual(probe["nb_read_frames"], "45")
    XCTAssertEqual(probe["width"], "320")
    XCTAssertEqual(probe["TAG:alpha_mode"], "1", "ffprobe reads AlphaMode 1")
    XCTAssertEqual(Double(probe["duration"] ?? "") ?? 0, 1.5, accuracy: 0.001)
  }

  func testMkvinfoParsesLayout() throws {
    let mkvinfo = try requireTool("mkvinfo")
    let path = output("layout.webm")
    XCTAssertNil(encode(to: path).error)
    let result = try runProcess(mkvinfo, ["-v", "-v", path])
    XCTAssertEqual(result.status, 0, "mkvinfo exit status; stderr: \(result.stderr)")
    let text = result.stdout
    XCTAssertFalse(text.contains("Error"), "mkvinfo reports an error")
    XCTAssertTrue(text.contains("Document type: webm"))
    XCTAssertTrue(text.contains("Codec ID: V_VP9"))
    XCTAssertTrue(text.contains("ID: 0x53c0 size: 4"), "AlphaMode element (unknown to mkvinfo v74)")
    XCTAssertTrue(text.contains("Duration: 00:00:01.5") || text.contains("Duration: 00:00:01.4999"), "Duration 1.5 s")
    func count(_ needle: String) -> Int { text.components(separatedBy: needle).count - 1 }
    XCTAssertEqual(count("+ Block group"), 45, "one BlockGroup per frame")
    XCTAssertEqual(count("Block additional ID: 1"), 45, "an alpha BlockAddition on every frame")
    XCTAssertEqual(count("|+ Cluster at"), 3, "clusters at the keyframes 0, 15, 30")
    XCTAssertEqual(count("+ Cue point"), 3)
    XCTAssertTrue(text.contains("Cue time: 00:00:01.000000000"))
    XCTAssertEqual(count("Reference block"), 42, "ReferenceBlock on every non-keyframe")
    // Alpha keyframes sit on the colour keyframes: the BlockAdditionals of frames 0, 15 and 30
    // start with a VP9 keyframe header (frame marker, then the sync code 49 83 42).
    XCTAssertEqual(count("Block additional: length"), 45)
    XCTAssertEqual(count("Block additional: length") - count("data: 0x82 0x49 0x83 0x42"), 42)
    XCTAssertEqual(count("Frame with size"), 45)
    XCTAssertTrue(text.contains("+ Seek head"))
    // The SeekHead lists Info, Tracks and Cues.
    XCTAssertEqual(count("+ Seek entry"), 3)
  }

  /// Non-square pixels (here PAL DV widescreen's 64:45) are written as a display size, the
  /// width stretched: 176 × 64/45 = 250.3 → 250 × 144, which ffprobe and players show at 125:72
  /// (as webmmux writes it). Tall pixels stretch the height. Square pixels write none.
  func testPixelAspectRatioBecomesTheDisplaySize() throws {
    let mkvinfo = try requireTool("mkvinfo")
    for (par, display) in [("64/45", "250x144"), ("8/9", "176x162"), ("1/1", "")] {
      let path = output("par-\(par.replacingOccurrences(of: "/", with: "-")).webm")
      let outcome = runPipeline("videotestsrc num-buffers=3 ! video/x-raw,format=A420,width=176,height=144,"
        + "pixel-aspect-ratio=\(par),framerate=10/1 ! vp9alphaenc ! webmalphamux ! filesink location=\(path)")
      XCTAssertNil(outcome.error, outcome.error ?? "")
      let text = try runProcess(mkvinfo, ["-v", path]).stdout
      let width = text.components(separatedBy: "Display width: ").dropFirst().first?.prefix { $0.isNumber } ?? ""
      let height = text.components(separatedBy: "Display height: ").dropFirst().first?.prefix { $0.isNumber } ?? ""
      XCTAssertEqual(width.isEmpty ? "" : "\(width)x\(height)", display, "pixel-aspect-ratio \(par)")
      let probe = try ffprobe(path, "stream=width,height,display_aspect_ratio")
      XCTAssertEqual([probe["width"], probe["height"]], ["176", "144"], "coded size kept")
      let shown = ["64/45": "125:72", "8/9": "88:81", "1/1": "11:9"][par]
      XCTAssertEqual(probe["display_aspect_ratio"], shown, "pixel-aspect-ratio \(par)")
    }
  }

  func testVP9ParseInFrontOfMuxer() throws {
    // vp9parse 1.22.0 loops forever unless the muxer's caps name codec-alpha=true.
    let path = output("parsed.webm")
    let outcome = encode(to: path, between: "! vp9parse")
    XCTAssertNil(outcome.error, outcome.error ?? "")
    assertAlphaMatches(try ffmpegDecode(path), pattern, frames: 45, maxMeanError: 1.0, "through vp9parse")
  }

  func testPlainVP9WritesSimpleBlocksWithoutAlphaMode() throws {
    let mkvinfo = try requireTool("mkvinfo")
    let path = output("plain.webm")
    let outcome = runPipeline("videotestsrc num-buffers=20 ! video/x-raw,width=160,height=120,framerate=20/1 ! vp9enc deadline=1 cpu-used=8 ! webmalphamux ! filesink location=\(path)")
    XCTAssertNil(outcome.error, outcome.error ?? "")
    let text = try runProcess(mkvinfo, ["-v", "-v", path]).stdout
    XCTAssertEqual(text.components(separatedBy: "+ Simple block: ").count - 1, 20)
    XCTAssertFalse(text.contains("0x53c0"), "no AlphaMode for plain VP9")
    XCTAssertFalse(text.contains("Block group"))
    let probe = try ffprobe(path, "stream=nb_read_frames:format=duration")
    XCTAssertEqual(probe["nb_read_frames"], "20")
    XCTAssertEqual(Double(probe["duration"] ?? "") ?? 0, 1.0, accuracy: 0.001)
  }

  func testSeekToKeyframeLandsWithCorrectAlpha() throws {
    let path = output("seek.webm")
    XCTAssertNil(encode(to: path).error)
    var error: UnsafeMutablePointer<GError>? = nil
    let pipeline = gst_parse_launch(
      "filesrc location=\(path) ! decodebin ! videoconvert ! video/x-raw,format=RGBA ! fakesink name=sink sync=false", &error)!
    defer {
      gst_element_set_state(pipeline, GST_STATE_NULL)
      gst_object_unref(pipeline)
    }
    gst_element_set_state(pipeline, GST_STATE_PAUSED)
    XCTAssertEqual(gst_element_get_state(pipeline, nil, nil, 10_000_000_000), GST_STATE_CHANGE_SUCCESS)
    let sink = gst_bin_get_by_name(UnsafeMutableRawPointer(pipeline).assumingMemoryBound(to: GstBin.self), "sink")!
    defer { gst_object_unref(sink) }
    for (seconds, frame) in [(1.0, 30), (0.5, 15)] {
      let target = UInt(seconds * 1e9)
      let flags = GstSeekFlags(rawValue: GST_SEEK_FLAG_FLUSH.rawValue | GST_SEEK_FLAG_KEY_UNIT.rawValue)
      XCTAssertEqual(gst_element_seek_simple(pipeline, GST_FORMAT_TIME, flags, Int(target)), 1)
      XCTAssertEqual(gst_element_get_state(pipeline, nil, nil, 10_000_000_000), GST_STATE_CHANGE_SUCCESS)
      let sample = bd_sink_last_sample(sink)!
      defer { gst_sample_unref(sample) }
      let buffer = gst_sample_get_buffer(sample)!
      XCTAssertEqual(Double(buffer.pointee.pts) / 1e9, seconds, accuracy: 0.002, "landed on the keyframe")
      var map = GstMapInfo()
      XCTAssertEqual(gst_buffer_map(buffer, &map, GST_MAP_READ), 1)
      let data = Data(bytes: map.data, count: Int(map.size))
      gst_buffer_unmap(buffer, &map)
      assertAlphaMatches(data, pattern, frames: 1, firstFrame: frame, maxMeanError: 1.0, "after seeking to \(seconds) s")
    }
  }

  func testOpusAudioIsInterleavedAndKeepsItsDuration() throws {
    // Audio 2.0 s, video 1.5 s: the video pad reaches EOS first.
    let path = output("audio.webm")
    let outcome = encode(
      to: path,
      extra: "audiotestsrc num-buffers=100 samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=2 ! opusenc ! mux.")
    XCTAssertNil(outcome.error, outcome.error ?? "")
    assertAlphaMatches(try ffmpegDecode(path), pattern, frames: 45, maxMeanError: 1.0, "with audio")

    let ffmpeg = try requireTool("ffmpeg")
    let pcm = path + ".s16"
    let decoded = try runProcess(ffmpeg, ["-v", "error", "-y", "-i", path, "-map", "0:a", "-f", "s16le", "-ac", "1", "-ar", "48000", pcm])
    XCTAssertEqual(decoded.status, 0, decoded.stderr)
    let samples = ((try? Data(contentsOf: URL(fileURLWithPath: pcm)))?.count ?? 0) / 2
    XCTAssertEqual(Double(samples) / 48000, 2.0, accuracy: 0.025, "decoded Opus duration (ffmpeg)")

    let raw = path + ".gst.pcm"
    let gst = runPipeline("filesrc location=\(path) ! matroskademux ! opusdec ! audioconvert ! audio/x-raw,format=S16LE,channels=1,rate=48000 ! filesink location=\(raw)")
    XCTAssertNil(gst.error, gst.error ?? "")
    let gstSamples = ((try? Data(contentsOf: URL(fileURLWithPath: raw)))?.count ?? 0) / 2
    XCTAssertEqual(Double(gstSamples) / 48000, 2.0, accuracy: 0.025, "decoded Opus duration (GStreamer)")

    let probe = try ffprobe(path, "stream=codec_name", stream: "a:0")
    XCTAssertEqual(probe["codec_name"], "opus")
    let mkv = try runProcess(try requireTool("mkvinfo"), ["-v", "-v", path]).stdout
    XCTAssertTrue(mkv.contains("Codec ID: A_OPUS"))
    XCTAssertTrue(mkv.contains("Codec-inherent delay: 00:00:00.006500000"), "CodecDelay from the OpusHead pre-skip")
    XCTAssertGreaterThan(mkv.components(separatedBy: "Simple block: key, track number 2,").count - 1, 50, "Opus SimpleBlocks")
  }

  func testVorbisAudio() throws {
    let path = output("vorbis.webm")
    let outcome = encode(
      to: path,
      extra: "audiotestsrc num-buffers=30 samplesperbuffer=1600 ! audio/x-raw,rate=32000,channels=1 ! vorbisenc ! mux.")
    XCTAssertNil(outcome.error, outcome.error ?? "")
    let probe = try ffprobe(path, "stream=codec_name,sample_rate", stream: "a:0")
    XCTAssertEqual(probe["codec_name"], "vorbis")
    XCTAssertEqual(probe["sample_rate"], "32000")
    let raw = path + ".gst.pcm"
    let gst = runPipeline("filesrc location=\(path) ! matroskademux ! vorbisdec ! audioconvert ! audio/x-raw,format=S16LE,channels=1 ! filesink location=\(raw)")
    XCTAssertNil(gst.error, gst.error ?? "")
    let samples = ((try? Data(contentsOf: URL(fileURLWithPath: raw)))?.count ?? 0) / 2
    XCTAssertEqual(Double(samples) / 32000, 1.5, accuracy: 0.03, "decoded Vorbis duration")
  }

  func testTimestampsNotStartingAtZero() throws {
    // Buffers stamped from 7 s on: the file still starts at 0 and lasts 1.5 s.
    let path = output("offset.webm")
    let outcome = encode(to: path, between: "! identity ts-offset=7000000000")
    XCTAssertNil(outcome.error, outcome.error ?? "")
    let probe = try ffprobe(path, "stream=nb_read_frames,start_time:format=duration")
    XCTAssertEqual(probe["nb_read_frames"], "45")
    XCTAssertEqual(Double(probe["start_time"] ?? "") ?? -1, 0, accuracy: 0.001)
    XCTAssertEqual(Double(probe["duration"] ?? "") ?? 0, 1.5, accuracy: 0.001)
    assertAlphaMatches(try ffmpegDecode(path), pattern, frames: 45, maxMeanError: 1.0, "offset timestamps")
  }

  func testStreamableOutputToAPipeDecodes() throws {
    var fds: [Int32] = [0, 0]
    XCTAssertEqual(pipe(&fds), 0)
    let reader = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true)
    nonisolated(unsafe) var received = Data()
    let thread = Thread { received = reader.readDataToEndOfFile() }
    thread.start()
    let outcome = runPipeline("\(pattern.rawVideoSource(Self.rawClip.path)) ! vp9alphaenc keyframe-max-dist=15 ! webmalphamux ! fdsink fd=\(fds[1])")
    close(fds[1])
    while !thread.isFinished { usleep(1000) }
    XCTAssertNil(outcome.error, outcome.error ?? "")
    let path = output("piped.webm")
    try received.write(to: URL(fileURLWithPath: path))
    // Live layout: unknown-size Segment (01 FF FF FF FF FF FF FF right after its ID), no Cues.
    let bytes = [UInt8](received)
    let segment = bytes.firstRange(of: [0x18, 0x53, 0x80, 0x67] as [UInt8])
    XCTAssertNotNil(segment)
    if let segment {
      XCTAssertEqual(Array(bytes[segment.upperBound..<segment.upperBound + 8]), [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
    }
    XCTAssertNil(bytes.firstRange(of: [0x1C, 0x53, 0xBB, 0x6B] as [UInt8]), "no Cues in live output")
    // Decoded from a pipe by ffmpeg (stdin) and from the file by GStreamer.
    let ffmpeg = try requireTool("ffmpeg")
    let raw = path + ".stdin.rgba"
    let result = try runProcess(ffmpeg, ["-v", "error", "-y", "-c:v", "libvpx-vp9", "-i", "pipe:0", "-f", "rawvideo", "-pix_fmt", "rgba", raw], stdinFile: path)
    XCTAssertEqual(result.status, 0, result.stderr)
    assertAlphaMatches((try? Data(contentsOf: URL(fileURLWithPath: raw))) ?? Data(), pattern, frames: 45, maxMeanError: 1.0, "live output via stdin")
    let gstRaw = path + ".fd.rgba"
    let gst = runPipeline("fdsrc fd=\(open(path, O_RDONLY)) ! decodebin ! videoconvert ! video/x-raw,format=RGBA ! filesink location=\(gstRaw)")
    XCTAssertNil(gst.error, gst.error ?? "")
    assertAlphaMatches((try? Data(contentsOf: URL(fileURLWithPath: gstRaw))) ?? Data(), pattern, frames: 45, maxMeanError: 1.0, "live output via fdsrc")
  }

  func testStreamablePropertyOnAFile() throws {
    let mkvinfo = try requireTool("mkvinfo")
    let path = output("streamable.webm")
    XCTAssertNil(encode(to: path, mux: "webmalphamux name=mux streamable=true").error)
    let text = try runProcess(mkvinfo, ["-v", "-v", path]).stdout
    XCTAssertTrue(text.contains("Segment: size unknown"))
    XCTAssertFalse(text.contains("Cues"))
    XCTAssertFalse(text.contains("Duration"))
    XCTAssertEqual(text.components(separatedBy: "|+ Cluster at").count - 1, 3)
  }

  func testRejectsStreamsItCannotWrite() {
    // Caps outside the templates are refused at linking.
    let link = runPipeline("audiotestsrc num-buffers=2 ! wavenc ! webmalphamux ! fakesink")
    XCTAssertTrue((link.error ?? "").contains("could not link"), "WAV refused at linking: \(link.error ?? "nil")")
    // Caps the template allows but the muxer cannot write: a clear error naming the problem.
    let headers = runPipeline(
      "fakesrc num-buffers=3 sizetype=fixed sizemax=100 filltype=zero ! audio/x-vorbis,rate=44100,channels=2 ! webmalphamux ! fakesink")
    XCTAssertEqual(headers.error, "webmalphamux: Vorbis caps need the three stream headers (got 0)")
  }

  func testFlushingSeekWhileMuxingKeepsAValidFile() throws {
    // Preroll (the header and the first frames reach filesink), then a flushing seek to frame
    // 15 and play to the end. filesink truncates its file on the flush, so the muxer starts a
    // new file: frames 15...44, timestamps from 0, with their alpha.
    let path = output("flushed.webm")
    var error: UnsafeMutablePointer<GError>? = nil
    let pipeline = gst_parse_launch(
      "\(pattern.rawVideoSource(Self.rawClip.path)) ! vp9alphaenc keyframe-max-dist=15 ! webmalphamux ! filesink location=\(path)", &error)!
    defer {
      gst_element_set_state(pipeline, GST_STATE_NULL)
      gst_object_unref(pipeline)
    }
    gst_element_set_state(pipeline, GST_STATE_PAUSED)
    XCTAssertEqual(gst_element_get_state(pipeline, nil, nil, 10_000_000_000), GST_STATE_CHANGE_SUCCESS)
    let flags = GstSeekFlags(rawValue: GST_SEEK_FLAG_FLUSH.rawValue | GST_SEEK_FLAG_ACCURATE.rawValue)
    XCTAssertEqual(gst_element_seek_simple(pipeline, GST_FORMAT_TIME, flags, 500_000_000), 1)
    XCTAssertEqual(gst_element_get_state(pipeline, nil, nil, 10_000_000_000), GST_STATE_CHANGE_SUCCESS)
    gst_element_set_state(pipeline, GST_STATE_PLAYING)
    let outcome = waitForEnd(pipeline, timeoutSeconds: 30)
    XCTAssertNil(outcome.error, outcome.error ?? "")
    gst_element_set_state(pipeline, GST_STATE_NULL)

    let probe = try requireTool("ffprobe")
    let result = try runProcess(probe, ["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0", path])
    XCTAssertEqual(result.status, 0, result.stderr)
    let times = result.stdout.split(separator: "\n").compactMap { Double($0.trimmingCharacters(in: CharacterSet(charactersIn: " ,"))) }
    XCTAssertEqual(times.count, 30, "frames 15...44")
    XCTAssertEqual(times.first ?? -1, 0, accuracy: 0.001, "the new file starts at 0")
    XCTAssertEqual(times, times.sorted(), "timestamps never go backwards")
    XCTAssertEqual(Set(times).count, times.count, "no two frames share a timestamp")
    assertAlphaMatches(try ffmpegDecode(path), pattern, frames: 30, firstFrame: 15, maxMeanError: 1.0, "after the flush")
  }

  func testAudioOnlyOpus() throws {
    let path = output("audio-only.webm")
    let outcome = runPipeline(
      "audiotestsrc num-buffers=350 samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=1 ! opusenc ! webmalphamux ! filesink location=\(path)")
    XCTAssertNil(outcome.error, outcome.error ?? "")
    let probe = try ffprobe(path, "stream=codec_name,channels:format=duration,format_name", stream: "a:0")
    XCTAssertEqual(probe["codec_name"], "opus")
    XCTAssertEqual(probe["channels"], "1")
    XCTAssertEqual(Double(probe["duration"] ?? "") ?? 0, 7.0, accuracy: 0.03)
    let mkv = try runProcess(try requireTool("mkvinfo"), ["-v", "-v", path])
    XCTAssertEqual(mkv.status, 0)
    // Audio-only files get a cluster (and a cue) every 5 s at most.
    XCTAssertEqual(mkv.stdout.components(separatedBy: "|+ Cluster at").count - 1, 2)
    XCTAssertEqual(mkv.stdout.components(separatedBy: "+ Cue point").count - 1, 2)
  }

  func testAudioPadThatEndsWithoutDataIsLeftOut() throws {
    // The audio branch reaches EOS before any buffer (or caps): the file has the video track only.
    let path = output("empty-audio.webm")
    let outcome = encode(to: path, extra: "audiotestsrc num-buffers=0 ! opusenc ! mux.")
    XCTAssertNil(outcome.error, outcome.error ?? "")
    let probe = try runProcess(try requireTool("ffprobe"), ["-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", path])
    XCTAssertEqual(probe.stdout.split(separator: "\n").map(String.init), ["video"])
    assertAlphaMatches(try ffmpegDecode(path), pattern, frames: 45, maxMeanError: 1.0, "video with an empty audio pad")
  }

  func testLiveOutputCarriesItsHeaderAsStreamheader() throws {
    let path = output("streamheader.webm")
    var error: UnsafeMutablePointer<GError>? = nil
    let pipeline = gst_parse_launch(
      "\(pattern.rawVideoSource(Self.rawClip.path)) ! vp9alphaenc keyframe-max-dist=15 ! webmalphamux streamable=true "
        + "! tee name=t ! queue ! filesink location=\(path) t. ! queue ! fakesink name=sink", &error)!
    defer {
      gst_element_set_state(pipeline, GST_STATE_NULL)
      gst_object_unref(pipeline)
    }
    gst_element_set_state(pipeline, GST_STATE_PLAYING)
    XCTAssertNil(waitForEnd(pipeline, timeoutSeconds: 30).error)
    let sink = gst_bin_get_by_name(UnsafeMutableRawPointer(pipeline).assumingMemoryBound(to: GstBin.self), "sink")!
    defer { gst_object_unref(sink) }
    let pad = gst_element_get_static_pad(sink, "sink")!
    defer { gst_object_unref(pad) }
    let caps = gst_pad_get_current_caps(pad)!
    defer { gst_caps_unref(caps) }
    let structure = gst_caps_get_structure(caps, 0)!
    XCTAssertEqual(String(cString: gst_structure_get_name(structure)), "video/webm")
    guard let array = gst_structure_get_value(structure, "streamheader"), gst_value_array_get_size(array) == 1,
      let boxed = g_value_get_boxed(gst_value_array_get_value(array, 0))
    else {
      XCTFail("live caps without a streamheader: \(String(cString: gst_caps_to_string(caps)))")
      return
    }
    let header = boxed.assumingMemoryBound(to: GstBuffer.self)
    let size = Int(gst_buffer_get_size(header))
    var bytes = [UInt8](repeating: 0, count: size)
    _ = bytes.withUnsafeMutableBytes { gst_buffer_extract(header, 0, $0.baseAddress, UInt(size)) }
    let file = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    XCTAssertGreaterThan(size, 100)
    XCTAssertEqual(Array(file.prefix(size)), bytes, "the streamheader is the file's EBML header, Segment start, Info and Tracks")
    XCTAssertEqual(Array(file[size..<size + 4]), [0x1F, 0x43, 0xB6, 0x75], "a Cluster follows the header")
  }
}
