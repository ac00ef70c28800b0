// The containers that parts of `compose --segment` are written in and that `join` puts back
// together: which demuxer reads a piece and which muxer writes the whole, both passing the coded
// frames through untouched. Also where a part's title goes in each: webmalphamux writes it as the
// WebM Segment Info Title (its `title` property); qtmux and mp4mux take it as a global tag
// (moov/udta/meta/ilst/©nam). Either way GStreamer's demuxers read it back as the title tag.
import CGStreamer
import Foundation

enum PartContainer: String {
  case webm, mov, mp4

  /// What a file holds, from its first bytes (a piece may be misnamed): EBML is WebM, an ISO media
  /// file whose major brand is QuickTime's ("qt  ") is .mov, any other is .mp4; nil otherwise.
  static func sniff(_ path: String) throws -> PartContainer? {
    guard let bytes = fileHead(path, 12) else { throw LauncherError.noInput("cannot read \(path)") }
    if bytes.starts(with: [0x1A, 0x45, 0xDF, 0xA3]) { return .webm }
    guard bytes.count == 12, bytes[4..<8].elementsEqual("ftyp".utf8) else { return nil }
    return bytes[8..<12].elementsEqual("qt  ".utf8) ? .mov : .mp4
  }

  var demuxer: String { self == .webm ? "matroskademux" : "qtdemux" }

  /// The muxer's element, named mux (its video_0 and audio_0 pads take the joined streams).
  var muxer: String {
    switch self {
    case .webm: return "webmalphamux name=mux"
    case .mov: return "qtmux name=mux"
    case .mp4: return "mp4mux name=mux"
    }
  }
  /// How messages name it.
  var label: String {
    switch self {
    case .webm: return "a transparent WebM (.webm)"
    case .mov: return "a QuickTime ProRes (.mov)"
    case .mp4: return "an MP4 (.mp4)"
    }
  }
}

/// Tags on a muxer (a GstTagSetter: qtmux, mp4mux, matroskamux).
enum MuxerTags {
  /// Records `title` as the file's global title. Set before the stream starts: the muxer's
  /// default merge mode (KEEP) then keeps it against any title the input carries.
  static func setTitle(_ title: String, on muxer: UnsafeMutablePointer<GstElement>) {
    guard isTagSetter(muxer) else { return }
    let list = gst_tag_list_new_empty()
    var value = GValue()
    g_value_init(&value, GType(16 << 2))  // G_TYPE_STRING
    g_value_set_string(&value, title)
    gst_tag_list_add_value(list, GST_TAG_MERGE_REPLACE, "title", &value)
    g_value_unset(&value)
    gst_tag_setter_merge_tags(OpaquePointer(muxer), list, GST_TAG_MERGE_REPLACE)
    gst_tag_list_unref(list)
  }

  /// Makes the muxer write none of the tags that arrive with the streams: a joined file must not
  /// carry its first piece's part title (join would take it for a part).
  static func ignoreStreamTags(on muxer: UnsafeMutablePointer<GstElement>) {
    guard isTagSetter(muxer) else { return }
    gst_tag_setter_set_tag_merge_mode(OpaquePointer(muxer), GST_TAG_MERGE_KEEP_ALL)
  }

  private static func isTagSetter(_ element: UnsafeMutablePointer<GstElement>) -> Bool {
    g_type_check_instance_is_a(UnsafeMutableRawPointer(element).assumingMemoryBound(to: GTypeInstance.self), gst_tag_setter_get_type()) != 0
  }
}
