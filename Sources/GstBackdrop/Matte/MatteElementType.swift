// GObject registration of birefnetmatte: class_init (metadata, pad templates, properties,
// vfuncs) and instance_init (pads, Swift state). The C callbacks only forward to MatteElement.
import CBackdropShim
import CGStreamer

let matteDebug = DebugCategory("birefnetmatte", "Backdrop BiRefNet matting element")

nonisolated(unsafe) private var matteParentClass: UnsafeMutablePointer<GstElementClass>? = nil

let matteElementType: GType = registerSubclass(
  parent: gst_element_get_type(), name: "BdBiRefNetMatte",
  classInit: { klass, _ in matteClassInit(klass) },
  instanceInit: { instance, _ in
    guard let instance else { return }
    attachState(MatteElement(element: UnsafeMutableRawPointer(instance).assumingMemoryBound(to: GstElement.self)), to: instance)
  })

private func matteClassInit(_ klass: gpointer?) {
  matteParentClass = g_type_class_peek_parent(klass)?.assumingMemoryBound(to: GstElementClass.self)
  let objectClass = classStruct(klass, as: GObjectClass.self)
  objectClass.pointee.set_property = { object, id, value, _ in
    guard let element = attachedState(object, as: MatteElement.self),
      let property = MatteProperty(rawValue: id), let value
    else { return }
    element.setProperty(property, value)
  }
  objectClass.pointee.get_property = { object, id, value, _ in
    guard let element = attachedState(object, as: MatteElement.self),
      let property = MatteProperty(rawValue: id), let value
    else { return }
    element.getProperty(property, value)
  }
  for property in MatteProperty.allCases {
    installProperty(klass, id: property.rawValue, property.paramSpec())
  }

  let elementClass = classStruct(klass, as: GstElementClass.self)
  gst_element_class_set_metadata(
    elementClass, "BiRefNet background matting", "Filter/Effect/Video",
    "Separates the subject from the background with a neural network (BiRefNet or TorchScript) "
      + "and writes alpha, a matte or a composite on a new background",
    "Backdrop")
  // System memory, and CUDA memory with the same formats (issue 14: taken and written only when the
  // model runs on CUDA; the caps queries say which, see MatteCudaMemory.swift).
  addPadTemplate(klass, name: "sink", direction: GST_PAD_SINK, presence: GST_PAD_ALWAYS,
                 caps: rawVideoCapsString(MatteFormats.sinkFormats) + "; "
                   + rawVideoCapsString(MatteFormats.sinkFormats, feature: MatteMemory.cudaFeature))
  addPadTemplate(klass, name: "src", direction: GST_PAD_SRC, presence: GST_PAD_ALWAYS,
                 caps: rawVideoCapsString(MatteFormats.sourceFormats) + "; "
                   + rawVideoCapsString(MatteFormats.sourceFormats, feature: MatteMemory.cudaFeature))
  // A CUDA context the bin hands over while the element looks for one (issue 14).
  elementClass.pointee.set_context = { element, context in
    if let element, let context { bd_cuda_context_was_set(element, context) }
    matteParentClass!.pointee.set_context(element, context)
  }
  elementClass.pointee.change_state = { element, transition in
    guard let state = attachedState(element, as: MatteElement.self) else {
      return GST_STATE_CHANGE_FAILURE
    }
    return state.changeState(transition) { matteParentClass!.pointee.change_state(element, transition) }
  }
}

/// Creates the element's pads and routes their functions to `state`.
func makeMattePads(for element: UnsafeMutablePointer<GstElement>)
  -> (sink: UnsafeMutablePointer<GstPad>, src: UnsafeMutablePointer<GstPad>)
{
  let klass = UnsafeMutableRawPointer(element.pointee.object.object.g_type_instance.g_class)
    .assumingMemoryBound(to: GstElementClass.self)
  let sink = gst_pad_new_from_template(gst_element_class_get_pad_template(klass, "sink"), "sink")!
  let src = gst_pad_new_from_template(gst_element_class_get_pad_template(klass, "src"), "src")!

  gst_pad_set_chain_function_full(sink, { pad, parent, buffer in
    guard let state = attachedState(parent, as: MatteElement.self), let buffer else {
      if let buffer { gst_buffer_unref(buffer) }
      return GST_FLOW_ERROR
    }
    return state.chain(buffer)
  }, nil, nil)
  gst_pad_set_event_function_full(sink, { pad, parent, event in
    guard let state = attachedState(parent, as: MatteElement.self), let event else { return 0 }
    return state.sinkEvent(pad!, event) ? 1 : 0
  }, nil, nil)
  gst_pad_set_query_function_full(sink, { pad, parent, query in
    guard let state = attachedState(parent, as: MatteElement.self), let query else { return 0 }
    return state.sinkQuery(pad!, query) ? 1 : 0
  }, nil, nil)
  gst_pad_set_event_function_full(src, { pad, parent, event in
    guard let state = attachedState(parent, as: MatteElement.self), let event else { return 0 }
    return state.srcEvent(pad!, event) ? 1 : 0
  }, nil, nil)
  gst_pad_set_query_function_full(src, { pad, parent, query in
    guard let state = attachedState(parent, as: MatteElement.self), let query else { return 0 }
    return state.srcQuery(pad!, query) ? 1 : 0
  }, nil, nil)

  gst_element_add_pad(element, sink)
  gst_element_add_pad(element, src)
  return (sink, src)
}
