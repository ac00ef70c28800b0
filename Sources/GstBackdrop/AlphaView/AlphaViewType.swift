// GObject registration of alphaview (a GstVideoFilter subclass): metadata, pad templates, the
// layout property and vfuncs. The C callbacks only forward to AlphaView.
import CBackdropShim
import CGStreamer

let alphaViewDebug = DebugCategory("alphaview", "Backdrop: alpha shown stacked or over a checkerboard")

let alphaViewType: GType = registerSubclass(
  parent: gst_video_filter_get_type(), name: "BdAlphaView",
  classInit: { klass, _ in alphaViewClassInit(klass) },
  instanceInit: { instance, _ in
    guard let instance else { return }
    attachState(AlphaView(element: UnsafeMutableRawPointer(instance).assumingMemoryBound(to: GstElement.self)), to: instance)
  })

private let layoutProperty: UInt32 = 1

private func alphaViewClassInit(_ klass: gpointer?) {
  let objectClass = classStruct(klass, as: GObjectClass.self)
  objectClass.pointee.set_property = { object, id, value, _ in
    guard id == layoutProperty, let view = attachedState(object, as: AlphaView.self), let value else { return }
    view.layout.withLock { $0 = BdAlphaViewLayout(UInt32(g_value_get_enum(value))) }
  }
  objectClass.pointee.get_property = { object, id, value, _ in
    guard id == layoutProperty, let view = attachedState(object, as: AlphaView.self), let value else { return }
    g_value_set_enum(value, gint(view.layout.withLock { $0 }.rawValue))
  }
  let flags = bd_param_flags_mutable_ready()
  installProperty(klass, id: layoutProperty, g_param_spec_enum(
    "layout", "Layout",
    "stacked: twice as tall, the colour on top and the alpha as grey below (for players without transparency); "
      + "checkerboard: the picture over a grey checkerboard of 16-pixel squares",
    bd_alpha_view_layout_get_type(), gint(BD_ALPHA_VIEW_STACKED.rawValue), flags))

  let elementClass = classStruct(klass, as: GstElementClass.self)
  gst_element_class_set_metadata(
    elementClass, "Alpha view", "Filter/Effect/Video",
    "Shows a picture's alpha without transparency: stacked below the colour (twice as tall) or as the picture over a "
      + "checkerboard; one output frame per input frame, timestamps untouched",
    "Backdrop")
  addPadTemplate(klass, name: "sink", direction: GST_PAD_SINK, presence: GST_PAD_ALWAYS, caps: rawVideoCapsString(["RGBA"]))
  addPadTemplate(klass, name: "src", direction: GST_PAD_SRC, presence: GST_PAD_ALWAYS, caps: rawVideoCapsString(["RGBx"]))

  let transformClass = classStruct(klass, as: GstBaseTransformClass.self)
  transformClass.pointee.transform_caps = { trans, direction, caps, filter in
    guard let caps, let view = attachedState(trans, as: AlphaView.self) else { return nil }
    return view.transformCaps(caps, direction: direction, filter: filter)
  }
  let filterClass = classStruct(klass, as: GstVideoFilterClass.self)
  filterClass.pointee.transform_frame = { filter, input, output in
    guard let input, let output, let view = attachedState(filter, as: AlphaView.self) else { return GST_FLOW_ERROR }
    return view.transform(input, output)
  }
}
