#include <gst/gst.h>
#include <gst/base/base.h>
#include <gst/video/video.h>
/* The test harness's declarations live here too (tests link it through CGStreamerCheck): when a
 * second module also parsed gst/gst.h, a fresh build could lose GStreamer's enum constants in
 * files that imported both ("cannot find 'GST_MESSAGE_ERROR' in scope"). */
#include <gst/check/gstharness.h>
