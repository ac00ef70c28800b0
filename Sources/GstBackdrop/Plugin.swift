// Plugin entry point: registers the elements of the "backdrop" plugin. The descriptor itself is
// GST_PLUGIN_DEFINE in the C shim (plugin_desc.c), which calls this function.
import CGStreamer

struct ElementRegistration: Sendable {
  let name: String
  let rank: GstRank
  let type: @Sendable () -> GType
}

/// Every element of the plugin. The GType getters register their type on first use.
let elementRegistrations: [ElementRegistration] = [
  ElementRegistration(name: "birefnetmatte", rank: GST_RANK_NONE, type: { matteElementType }),
  ElementRegistration(name: "vp9alphaenc", rank: GST_RANK_NONE, type: { vp9AlphaEncoderType }),
  ElementRegistration(name: "webmalphamux", rank: GST_RANK_NONE, type: { webmAlphaMuxType }),
  ElementRegistration(name: "alphaview", rank: GST_RANK_NONE, type: { alphaViewType }),
]

@_cdecl("bd_plugin_init")
func pluginInit(_ plugin: OpaquePointer?) -> gboolean {
  for element in elementRegistrations {
    if gst_element_register(plugin, element.name, UInt32(element.rank.rawValue), element.type()) == 0 {
      return 0
    }
  }
  return 1
}
