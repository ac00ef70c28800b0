// GObject registration of vp9alphaenc (a GstVideoEncoder subclass): metadata, pad templates,
// properties and vfuncs. The C callbacks only forward to VP9AlphaEncoder.
import CBackdropShim
import CGStreamer

let vp9AlphaDebug = DebugCategory("vp9alphaenc", "Backdrop VP9 encoder with alpha")

nonisolated(unsafe) private var vp9AlphaParentClass: UnsafeMutablePointer<GstVideoEncoderClass>? = nil

/// Caps vp9alphaenc produces: the colour frame, with the alpha frame as GstVideoCodecAlphaMeta.
let vp9AlphaSourceCaps =
  "video/x-vp9, profile=(string)0, alignment=(string)super-frame, codec-alpha=(boolean)true, "
  + "width=(int)[ 1, 16384 ], height=(int)[ 1, 16384 ], framerate=(fraction)[ 0/1, 2147483647/1 ]"

let vp9AlphaEncoderType: GType = registerSubclass(
  parent: gst_video_encoder_get_type(), name: "BdVP9AlphaEnc",
  classInit: { klass, _ in vp9AlphaClassInit(klass) },
  instanceInit: { instance, _ in
    guard let instance else { return }
    let encoder = UnsafeMutableRawPointer(instance).assumingMemoryBound(to: GstVideoEncoder.self)
    attachState(VP9AlphaEncoder(element: encoder), to: instance)
  })

private func state(_ encoder: UnsafeMutablePointer<GstVideoEncoder>?) -> VP9AlphaEncoder? {
  attachedState(encoder, as: VP9AlphaEncoder.self)
}

private func vp9AlphaClassInit(_ klass: gpointer?) {
  vp9AlphaParentClass = g_type_class_peek_parent(klass)?.assumingMemoryBound(to: GstVideoEncoderClass.self)
  let objectClass = classStruct(klass, as: GObjectClass.self)
  objectClass.pointee.set_property = { object, id, value, _ in
    guard let encoder = attachedState(object, as: VP9AlphaEncoder.self),
      let property = VP9AlphaProperty(rawValue: id), let value
    else { return }
    encoder.settings.withLock { $0.set(property, from: value) }
  }
  objectClass.pointee.get_property = { object, id, value, _ in
    guard let encoder = attachedState(object, as: VP9AlphaEncoder.self),
      let property = VP9AlphaProperty(rawValue: id), let value
    else { return }
    encoder.settings.withLock { $0.get(property, into: value) }
  }
  for property in VP9AlphaProperty.allCases {
    installProperty(klass, id: property.rawValue, property.paramSpec())
  }

  let elementClass = classStruct(klass, as: GstElementClass.self)
  gst_element_class_set_metadata(
    elementClass, "VP9 encoder with alpha", "Codec/Encoder/Video",
    "Encodes A420 (or RGBA/BGRA) video to VP9 with a second VP9 stream for the alpha channel (carried as "
      + "GstVideoCodecAlphaMeta), as browsers expect it in WebM",
    "Backdrop")
  addPadTemplate(klass, name: "sink", direction: GST_PAD_SINK, presence: GST_PAD_ALWAYS,
                 caps: rawVideoCapsString(["A420", "RGBA", "BGRA"]))
  addPadTemplate(klass, name: "src", direction: GST_PAD_SRC, presence: GST_PAD_ALWAYS,
                 caps: vp9AlphaSourceCaps)

  let encoderClass = classStruct(klass, as: GstVideoEncoderClass.self)
  encoderClass.pointee.start = { encoder in state(encoder)?.start() == true ? 1 : 0 }
  encoderClass.pointee.stop = { encoder in
    state(encoder)?.stop()
    return 1
  }
  encoderClass.pointee.set_format = { encoder, codecState in
    guard let codecState, let encoder = state(encoder) else { return 0 }
    return encoder.setFormat(codecState) ? 1 : 0
  }
  encoderClass.pointee.handle_frame = { encoder, frame in
    guard let frame else { return GST_FLOW_ERROR }
    guard let encoder = state(encoder) else {
      gst_video_codec_frame_unref(frame)
      return GST_FLOW_ERROR
    }
    return encoder.handleFrame(frame)
  }
  encoderClass.pointee.finish = { encoder in state(encoder)?.finish() ?? GST_FLOW_ERROR }
  encoderClass.pointee.flush = { encoder in
    state(encoder)?.flush()
    return 1
  }
  encoderClass.pointee.propose_allocation = { encoder, query in
    // Accept strided buffers (e.g. A420 from vp9alphadecodebin) without a copy upstream.
    gst_query_add_allocation_meta(query, gst_video_meta_api_get_type(), nil)
    return vp9AlphaParentClass!.pointee.propose_allocation(encoder, query)
  }
}
