#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>

#include "backdrop_shim.h"

static GQuark bd_state_quark(void) {
  return g_quark_from_static_string("backdrop-swift-state");
}

GType bd_register_subclass(GType parent, const char *name, GClassInitFunc class_init,
                           GInstanceInitFunc instance_init) {
  GTypeQuery query;
  g_type_query(parent, &query);
  return g_type_register_static_simple(parent, g_intern_string(name), query.class_size,
                                       class_init, query.instance_size, instance_init, 0);
}

void bd_instance_set_state(gpointer instance, gpointer state, GDestroyNotify release) {
  g_object_set_qdata_full(G_OBJECT(instance), bd_state_quark(), state, release);
}

gpointer bd_instance_get_state(gpointer instance) {
  return g_object_get_qdata(G_OBJECT(instance), bd_state_quark());
}

GParamFlags bd_param_flags_mutable_ready(void) {
  return (GParamFlags)(G_PARAM_READWRITE | GST_PARAM_MUTABLE_READY);
}

GParamFlags bd_param_flags_mutable_playing(void) {
  return (GParamFlags)(G_PARAM_READWRITE | GST_PARAM_MUTABLE_PLAYING | GST_PARAM_CONTROLLABLE);
}

GParamFlags bd_param_flags_read_only(void) { return G_PARAM_READABLE; }

GstDebugCategory *bd_debug_category_new(const char *name, const char *description) {
  return _gst_debug_category_new(name, 0, description);
}

void bd_log(GstDebugCategory *category, GstDebugLevel level, GObject *object, const char *file,
            const char *function, int line, const char *message) {
  if (category == NULL || level > gst_debug_category_get_threshold(category)) return;
  gst_debug_log(category, level, file, function, line, object, "%s", message);
}

void bd_element_message(GstElement *element, GstMessageType type, GQuark domain, gint code,
                        const char *text, const char *debug, const char *file,
                        const char *function, int line) {
  gst_element_message_full(element, type, domain, code, g_strdup(text), g_strdup(debug), file,
                           function, line);
}

void bd_object_set_string(gpointer object, const char *property, const char *value) {
  g_object_set(object, property, value, NULL);
}

void bd_object_set_int(gpointer object, const char *property, gint value) {
  g_object_set(object, property, value, NULL);
}

void bd_object_set_boolean(gpointer object, const char *property, gboolean value) {
  g_object_set(object, property, value, NULL);
}

GstSample *bd_sink_last_sample(GstElement *sink) {
  GstSample *sample = NULL;
  g_object_get(sink, "last-sample", &sample, NULL);
  return sample;
}

void bd_pad_stream_lock(GstPad *pad) { GST_PAD_STREAM_LOCK(pad); }
void bd_pad_stream_unlock(GstPad *pad) { GST_PAD_STREAM_UNLOCK(pad); }

#define BD_DEFINE_ENUM(func, type_name, ...)                                  \
  GType func(void) {                                                          \
    static gsize id = 0;                                                      \
    static const GEnumValue values[] = {__VA_ARGS__, {0, NULL, NULL}};        \
    if (g_once_init_enter(&id)) {                                             \
      g_once_init_leave(&id, g_enum_register_static(type_name, values));      \
    }                                                                         \
    return (GType)id;                                                         \
  }

BD_DEFINE_ENUM(bd_matte_background_get_type, "BdMatteBackground",
               {BD_MATTE_BACKGROUND_NONE, "No backdrop: the matte becomes the alpha channel", "none"},
               {BD_MATTE_BACKGROUND_GREEN, "Green screen (background-color, default pure green)", "green"},
               {BD_MATTE_BACKGROUND_COLOR, "A solid colour (background-color)", "color"},
               {BD_MATTE_BACKGROUND_IMAGE, "An image file (background-image)", "image"},
               {BD_MATTE_BACKGROUND_BLUR, "The frame itself, blurred (blur-radius)", "blur"})

BD_DEFINE_ENUM(bd_matte_precision_get_type, "BdMattePrecision",
               {BD_MATTE_PRECISION_AUTO, "FP32 on CPU, FP16 on CUDA", "auto"},
               {BD_MATTE_PRECISION_FP32, "32-bit float", "fp32"},
               {BD_MATTE_PRECISION_FP16, "16-bit float (CUDA only)", "fp16"},
               {BD_MATTE_PRECISION_BF16, "bfloat16: CUDA, or a CPU with AVX512-BF16 or AMX (float32 activations)", "bf16"})

BD_DEFINE_ENUM(bd_matte_background_fit_get_type, "BdMatteBackgroundFit",
               {BD_MATTE_BACKGROUND_FIT_COVER, "Fill the frame, keeping the aspect ratio (the overflow is cropped)", "cover"},
               {BD_MATTE_BACKGROUND_FIT_CONTAIN, "Whole image, keeping the aspect ratio (black bars)", "contain"},
               {BD_MATTE_BACKGROUND_FIT_STRETCH, "Whole image, stretched to the frame", "stretch"})

BD_DEFINE_ENUM(bd_matte_mode_get_type, "BdMatteMode",
               {BD_MATTE_MODE_BINARY, "Hard matte: opaque where probability >= threshold", "binary"},
               {BD_MATTE_MODE_SOFT, "Soft matte: alpha = probability", "soft"})

BD_DEFINE_ENUM(bd_matte_patch_order_get_type, "BdMattePatchOrder",
               {BD_MATTE_PATCH_ORDER_AUTO, "From the model file's metadata, else current", "auto"},
               {BD_MATTE_PATCH_ORDER_CURRENT, "Image patches as (c hg wg), weights from 2024-11 on", "current"},
               {BD_MATTE_PATCH_ORDER_LEGACY, "Image patches as (wg hg c), weights before 2024-11", "legacy"})

BD_DEFINE_ENUM(bd_matte_model_output_get_type, "BdMatteModelOutput",
               {BD_MATTE_MODEL_OUTPUT_LOGITS, "Logits: the element applies the sigmoid (BiRefNet)", "logits"},
               {BD_MATTE_MODEL_OUTPUT_PROBABILITY, "Probabilities 0-1: the model ends with its own sigmoid", "probability"})

/* spatial refinement (issue 9) */
BD_DEFINE_ENUM(bd_matte_edge_refine_get_type, "BdMatteEdgeRefine",
               {BD_MATTE_EDGE_REFINE_NONE, "Bilinear upsampling of the inference-size matte", "none"},
               {BD_MATTE_EDGE_REFINE_GUIDED, "Guided filter steered by the full-resolution frame, in the uncertain band", "guided"})

BD_DEFINE_ENUM(bd_matte_cascade_get_type, "BdMatteCascade",
               {BD_MATTE_CASCADE_OFF, "One pass at the inference size", "off"},
               {BD_MATTE_CASCADE_AUTO, "Frames larger than the inference size: re-infer the uncertain band in cascade-size tiles", "auto"})

BD_DEFINE_ENUM(bd_alpha_view_layout_get_type, "BdAlphaViewLayout",
               {BD_ALPHA_VIEW_STACKED, "Twice as tall: the colour on top, the alpha as grey below", "stacked"},
               {BD_ALPHA_VIEW_CHECKERBOARD, "The picture over a grey checkerboard, as image editors show transparency", "checkerboard"})

char *bd_plugin_file_path(void) {
  Dl_info info;
  if (dladdr((void *)&bd_plugin_file_path, &info) == 0 || info.dli_fname == NULL) return NULL;
  char *resolved = realpath(info.dli_fname, NULL);
  if (resolved == NULL) return g_strdup(info.dli_fname);
  char *copy = g_strdup(resolved);
  free(resolved);
  return copy;
}
