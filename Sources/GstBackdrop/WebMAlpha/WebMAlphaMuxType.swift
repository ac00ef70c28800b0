// GObject registration of webmalphamux (a GstAggregator subclass): metadata, request pad
// templates (video_%u, audio_%u), the streamable property and the vfuncs, which forward to
// WebMAlphaMux.
import CBackdropShim
import CGStreamer

let webmDebug = DebugCategory("webmalphamux", "Backdrop WebM muxer with VP9 alpha")

nonisolated(unsafe) private var webmParentClass: UnsafeMutablePointer<GstAggregatorClass>? = nil

/// VP9 with and without alpha. codec-alpha is listed explicitly: vp9parse 1.22.0 loops forever
/// in front of elements whose caps do not name codec-alpha=true (fixed in 1.22.9).
let webmVideoSinkCaps =
  "video/x-vp9, codec-alpha=(boolean){ true, false }, width=(int)[ 1, 16384 ], height=(int)[ 1, 16384 ]; "
  + "video/x-vp9, width=(int)[ 1, 16384 ], height=(int)[ 1, 16384 ]"
let webmAudioSinkCaps =
  "audio/x-opus, channels=(int)[ 1, 8 ], rate=(int)[ 1, 2147483647 ]; "
  + "audio/x-vorbis, channels=(int)[ 1, 8 ], rate=(int)[ 1, 2147483647 ]"

enum WebMMuxProperty: UInt32, CaseIterable {
  case streamable = 1
  case title = 2

  func paramSpec() -> UnsafeMutablePointer<GParamSpec>? {
    switch self {
    case .streamable:
      return g_param_spec_boolean(
        "streamable", "Streamable",
        "Write live WebM (unknown sizes, no Cues or Duration) even when downstream can seek; "
          + "it is written anyway when downstream cannot seek (pipes, network)",
        0, bd_param_flags_mutable_ready())
    case .title:
      // `backdrop compose --segment` names the clip and range of a part here, for `backdrop join`.
      return g_param_spec_string(
        "title", "Title",
        "The file's title (Matroska Segment Info Title); empty writes none",
        nil, bd_param_flags_mutable_ready())
    }
  }
}

let webmAlphaMuxType: GType = registerSubclass(
  parent: gst_aggregator_get_type(), name: "BdWebMAlphaMux",
  classInit: { klass, _ in webmClassInit(klass) },
  instanceInit: { instance, _ in
    guard let instance else { return }
    let aggregator = UnsafeMutableRawPointer(instance).assumingMemoryBound(to: GstAggregator.self)
    attachState(WebMAlphaMux(aggregator: aggregator), to: instance)
  })

private func mux(_ aggregator: UnsafeMutablePointer<GstAggregator>?) -> WebMAlphaMux? {
  attachedState(aggregator, as: WebMAlphaMux.self)
}

private func webmClassInit(_ klass: gpointer?) {
  webmParentClass = g_type_class_peek_parent(klass)?.assumingMemoryBound(to: GstAggregatorClass.self)
  let objectClass = classStruct(klass, as: GObjectClass.self)
  objectClass.pointee.set_property = { object, id, value, _ in
    guard let mux = attachedState(object, as: WebMAlphaMux.self), let value,
      let property = WebMMuxProperty(rawValue: id)
    else { return }
    switch property {
    case .streamable:
      let streamable = g_value_get_boolean(value) != 0
      mux.settings.withLock { $0.streamable = streamable }
    case .title:
      let title = g_value_get_string(value).map { String(cString: $0) } ?? ""
      mux.settings.withLock { $0.title = title }
    }
  }
  objectClass.pointee.get_property = { object, id, value, _ in
    guard let mux = attachedState(object, as: WebMAlphaMux.self), let value,
      let property = WebMMuxProperty(rawValue: id)
    else { return }
    switch property {
    case .streamable: g_value_set_boolean(value, mux.settings.withLock { $0.streamable } ? 1 : 0)
    case .title: g_value_set_string(value, mux.settings.withLock { $0.title })
    }
  }
  for property in WebMMuxProperty.allCases {
    installProperty(klass, id: property.rawValue, property.paramSpec())
  }

  let elementClass = classStruct(klass, as: GstElementClass.self)
  gst_element_class_set_metadata(
    elementClass, "WebM muxer with VP9 alpha", "Codec/Muxer",
    "Writes VP9 video (with alpha as BlockAdditions and AlphaMode, as browsers play it) and "
      + "Opus/Vorbis audio to WebM; seekable files get Cues, Duration and a SeekHead",
    "Backdrop")
  addPadTemplate(klass, name: "video_%u", direction: GST_PAD_SINK, presence: GST_PAD_REQUEST,
                 caps: webmVideoSinkCaps)
  addPadTemplate(klass, name: "audio_%u", direction: GST_PAD_SINK, presence: GST_PAD_REQUEST,
                 caps: webmAudioSinkCaps)
  addPadTemplate(klass, name: "src", direction: GST_PAD_SRC, presence: GST_PAD_ALWAYS,
                 caps: "video/webm; audio/webm")

  let aggregatorClass = classStruct(klass, as: GstAggregatorClass.self)
  aggregatorClass.pointee.start = { aggregator in mux(aggregator)?.start() == true ? 1 : 0 }
  aggregatorClass.pointee.stop = { aggregator in mux(aggregator)?.stop() == true ? 1 : 0 }
  aggregatorClass.pointee.aggregate = { aggregator, timeout in
    mux(aggregator)?.aggregate(timeout: timeout != 0) ?? GST_FLOW_ERROR
  }
  aggregatorClass.pointee.flush = { aggregator in
    mux(aggregator)?.flush()
    return GST_FLOW_OK
  }
  aggregatorClass.pointee.create_new_pad = { aggregator, template, requestedName, _ in
    guard let aggregator, let template, let mux = mux(aggregator) else { return nil }
    let templateName = String(cString: template.pointee.name_template)
    let isVideo = templateName.hasPrefix("video")
    var name: String
    if let requestedName, !String(cString: requestedName).contains("%") {
      name = String(cString: requestedName)
    } else {
      name = mux.padCounters.withLock { counters in
        if isVideo {
          defer { counters.video += 1 }
          return "video_\(counters.video)"
        }
        defer { counters.audio += 1 }
        return "audio_\(counters.audio)"
      }
    }
    if isVideo && mux.hasVideoPad() {
      webmDebug.warning(aggregator, "webmalphamux takes one video stream; refusing pad \(name)")
      return nil
    }
    guard let pad = bd_aggregator_pad_new(gst_aggregator_pad_get_type(), name, template) else { return nil }
    return UnsafeMutableRawPointer(pad).assumingMemoryBound(to: GstAggregatorPad.self)
  }
  aggregatorClass.pointee.src_event = { aggregator, event in
    guard let aggregator, let event else { return 0 }
    if event.pointee.type == GST_EVENT_SEEK {
      // The base class applies seeks to the source segment, which is in bytes here: give it a
      // time segment (the output's byte segment is set again when writing resumes).
      let object = UnsafeMutableRawPointer(aggregator).assumingMemoryBound(to: GstObject.self)
      g_mutex_lock(&object.pointee.lock)
      let srcpad = UnsafeMutableRawPointer(aggregator.pointee.srcpad).assumingMemoryBound(to: GstAggregatorPad.self)
      if srcpad.pointee.segment.format != GST_FORMAT_TIME {
        gst_segment_init(&srcpad.pointee.segment, GST_FORMAT_TIME)
      }
      g_mutex_unlock(&object.pointee.lock)
    }
    return webmParentClass!.pointee.src_event(aggregator, event)
  }
  aggregatorClass.pointee.update_src_caps = { aggregator, _, result in
    guard let mux = mux(aggregator) else { return GST_FLOW_ERROR }
    result?.pointee = makeCaps(mux.hasVideoPad() ? "video/webm" : "audio/webm")
    return GST_FLOW_OK
  }
}
