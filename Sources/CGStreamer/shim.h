#include <gst/gst.h>
#include <gst/base/base.h>
#include <gst/video/video.h>

/* Whether a pad of an element anywhere inside `bin` has a streaming task that is paused. Before
 * the pipeline prerolled, that stream has stopped: decodebin keeps to itself an ERROR that a
 * demuxer posts while decodebin is still setting it to PAUSED (GStreamer 1.22), so a bus wait alone
 * would never learn of it. */
static inline gboolean bd_bin_has_stopped_task(GstBin *bin) {
  gboolean stopped = FALSE, done = FALSE;
  GstIterator *elements = gst_bin_iterate_recurse(bin);
  GValue item = G_VALUE_INIT;
  while (!done && !stopped) {
    switch (gst_iterator_next(elements, &item)) {
      case GST_ITERATOR_OK: {
        GstElement *element = GST_ELEMENT(g_value_get_object(&item));
        GST_OBJECT_LOCK(element);  /* the element's lock before its pads' (parent before child) */
        for (GList *node = element->pads; node != NULL && !stopped; node = node->next) {
          GstPad *pad = GST_PAD(node->data);
          GST_OBJECT_LOCK(pad);
          GstTask *task = GST_PAD_TASK(pad) != NULL ? gst_object_ref(GST_PAD_TASK(pad)) : NULL;
          GST_OBJECT_UNLOCK(pad);
          if (task != NULL) {
            stopped = gst_task_get_state(task) == GST_TASK_PAUSED;
            gst_object_unref(task);
          }
        }
        GST_OBJECT_UNLOCK(element);
        g_value_reset(&item);
        break;
      }
      case GST_ITERATOR_RESYNC:
        gst_iterator_resync(elements);
        break;
      default:
        done = TRUE;
        break;
    }
  }
  g_value_unset(&item);
  gst_iterator_free(elements);
  return stopped;
}
