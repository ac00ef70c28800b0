/* The plugin descriptor (GST_PLUGIN_DEFINE also defines gst_plugin_backdrop_register() for tests). GStreamer 1.22 looks up gst_plugin_backdrop_get_desc in libgstbackdrop.so;
 * bd_plugin_init is written in Swift (Plugin.swift). */
#include "backdrop_shim.h"

#define PACKAGE "backdrop"
extern gboolean bd_plugin_init(GstPlugin *plugin);

/* Origin: the project itself (it has no public web address yet; gst-inspect-1.0 shows this). */

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, backdrop,
                  "Backdrop: AI video background removal (BiRefNet matting, VP9 alpha, WebM)",
                  bd_plugin_init, "0.1.0", "LGPL", "backdrop", "Backdrop")
