/*
 * The C half of the plugin: everything Swift cannot call or declare by itself — variadic GLib and
 * GStreamer calls, composed macro values, static GEnum tables and the plugin descriptor. Keep this
 * small; element logic belongs in Swift.
 */
#ifndef BACKDROP_SHIM_H
#define BACKDROP_SHIM_H

#include <gst/gst.h>
#include <gst/video/video.h>

G_BEGIN_DECLS

/* Registers the plugin statically (for tests that link the plugin code into their binary). */
void gst_plugin_backdrop_register(void);

/* ---- GObject subclassing -------------------------------------------------------------------
 * A subclass has the parent's instance and class sizes; Swift keeps its per-instance state in
 * qdata (set in instance_init, released when the object is finalized). */
GType bd_register_subclass(GType parent, const char *name, GClassInitFunc class_init,
                           GInstanceInitFunc instance_init);
void bd_instance_set_state(gpointer instance, gpointer state, GDestroyNotify release);
gpointer bd_instance_get_state(gpointer instance);

/* Parameter flags, composed in C because the GStreamer macros are shifts Swift does not import. */
GParamFlags bd_param_flags_mutable_ready(void);   /* read-write, change only in NULL/READY */
GParamFlags bd_param_flags_mutable_playing(void); /* read-write, change at any time */
GParamFlags bd_param_flags_read_only(void);

/* ---- Logging and bus messages (variadic in GStreamer) ------------------------------------- */
GstDebugCategory *bd_debug_category_new(const char *name, const char *description);
void bd_log(GstDebugCategory *category, GstDebugLevel level, GObject *object, const char *file,
            const char *function, int line, const char *message);
/* Posts an ERROR/WARNING/INFO message like GST_ELEMENT_ERROR does. */
void bd_element_message(GstElement *element, GstMessageType type, GQuark domain, gint code,
                        const char *text, const char *debug, const char *file,
                        const char *function, int line);

/* g_object_set / g_object_get for single values (variadic in GObject). */
void bd_object_set_string(gpointer object, const char *property, const char *value);
void bd_object_set_int(gpointer object, const char *property, gint value);
void bd_object_set_boolean(gpointer object, const char *property, gboolean value);
/* The "last-sample" of a GstBaseSink (new reference or NULL). */
GstSample *bd_sink_last_sample(GstElement *sink);

/* ---- Pad stream lock (a macro in GStreamer) ----------------------------------------------- */
void bd_pad_stream_lock(GstPad *pad);
void bd_pad_stream_unlock(GstPad *pad);

/* ---- Where this plugin's shared library lives (dladdr + realpath), for finding the engine
 * beside it. Returns a newly allocated path (g_free it) or NULL. */
char *bd_plugin_file_path(void);

/* ---- GEnums of birefnetmatte ---------------------------------------------------------------- */
typedef enum {
  BD_MATTE_BACKGROUND_NONE = 0,
  BD_MATTE_BACKGROUND_GREEN = 1,
  BD_MATTE_BACKGROUND_COLOR = 2,
  BD_MATTE_BACKGROUND_IMAGE = 3,
  BD_MATTE_BACKGROUND_BLUR = 4,
} BdMatteBackground;
GType bd_matte_background_get_type(void);

typedef enum {
  BD_MATTE_PRECISION_AUTO = 0,
  BD_MATTE_PRECISION_FP32 = 1,
  BD_MATTE_PRECISION_FP16 = 2,
  BD_MATTE_PRECISION_BF16 = 3,
} BdMattePrecision;
GType bd_matte_precision_get_type(void);

typedef enum {
  BD_MATTE_MODE_BINARY = 0,
  BD_MATTE_MODE_SOFT = 1,
} BdMatteMode;
GType bd_matte_mode_get_type(void);

typedef enum {
  BD_MATTE_BACKGROUND_FIT_COVER = 0,
  BD_MATTE_BACKGROUND_FIT_CONTAIN = 1,
  BD_MATTE_BACKGROUND_FIT_STRETCH = 2,
} BdMatteBackgroundFit;
GType bd_matte_background_fit_get_type(void);

typedef enum {
  BD_MATTE_PATCH_ORDER_AUTO = 0,
  BD_MATTE_PATCH_ORDER_CURRENT = 1,
  BD_MATTE_PATCH_ORDER_LEGACY = 2,
} BdMattePatchOrder;
GType bd_matte_patch_order_get_type(void);

typedef enum {
  BD_MATTE_MODEL_OUTPUT_LOGITS = 0,
  BD_MATTE_MODEL_OUTPUT_PROBABILITY = 1,
} BdMatteModelOutput;
GType bd_matte_model_output_get_type(void);

/* spatial refinement (issue 9) */
typedef enum {
  BD_MATTE_EDGE_REFINE_NONE = 0,
  BD_MATTE_EDGE_REFINE_GUIDED = 1,
} BdMatteEdgeRefine;
GType bd_matte_edge_refine_get_type(void);

typedef enum {
  BD_MATTE_CASCADE_OFF = 0,
  BD_MATTE_CASCADE_AUTO = 1,
} BdMatteCascade;
GType bd_matte_cascade_get_type(void);

/* alphaview: how a picture with alpha is shown to players without transparency */
typedef enum {
  BD_ALPHA_VIEW_STACKED = 0,
  BD_ALPHA_VIEW_CHECKERBOARD = 1,
} BdAlphaViewLayout;
GType bd_alpha_view_layout_get_type(void);

/* ---- CUDA memory (issue 14), in cuda_shim.c ------------------------------------------------
 * Through GStreamer's gstcuda library (libgstcuda-1.0, gst-plugins-bad), loaded at run time, not
 * linked: its headers need the CUDA toolkit's cuda.h, and the plugin must still load and work in
 * system memory where gst-plugins-bad is missing. GstCudaContext objects are handled as GstObject. */
#define BD_CAPS_FEATURE_MEMORY_CUDA "memory:CUDAMemory"

/* Whether libgstcuda-1.0 loaded with every symbol used here; else `why` (may be NULL) tells. */
gboolean bd_cuda_library_available(const char **why);

/* The pipeline's GstCudaContext for CUDA device `device_index` (shared with neighbours through the
 * context query and NEED_CONTEXT/HAVE_CONTEXT, made when none exists), or NULL. Unref it. */
GstObject *bd_cuda_context_for_device(GstElement *element, int device_index);

/* For a model on CUDA device `device_index`, before upstream elements look for a CUDA context (the
 * element's NULL→READY comes before theirs): the pipeline's context when it has one, else a
 * GstCudaContext wrapping that GPU's primary context (libtorch's), announced with HAVE_CONTEXT, so
 * that a decoder's frames are in the engine's own context. NULL, with `why`, where it cannot be
 * made (no gstcuda or libcuda, no GPU). Unref it. */
GstObject *bd_cuda_share_primary_context(GstElement *element, int device_index, const char **why);

/* From the element's set_context: while bd_cuda_context_for_device waits on this thread for a
 * context (its NEED_CONTEXT is answered synchronously by the bin), a CUDA context set on the element
 * for that device is taken. */
void bd_cuda_context_was_set(GstElement *element, GstContext *context);

/* Answers a GST_QUERY_CONTEXT asking for the CUDA context with `context`. */
gboolean bd_cuda_answer_context_query(GstElement *element, GstQuery *query, GstObject *context);

/* An active CUDA buffer pool of `context` for buffers of `caps` (with the CUDAMemory feature). */
GstBufferPool *bd_cuda_buffer_pool_new(GstObject *context, GstCaps *caps, guint size);

/* Whether the buffer's first memory is GstCudaMemory. */
gboolean bd_cuda_buffer_is_device(GstBuffer *buffer);

/* Waits for work still queued on the CUDA stream of each GstCudaMemory in `buffer` (its producer's
 * copy or kernel) before we read it on ours: gst_cuda_memory_sync, on GStreamer >= 1.24. Returns the
 * number of CUDA memories it was called for; 0 on 1.22 (no such call, nothing to wait for there) and
 * for system memory. */
int bd_cuda_buffer_sync(GstBuffer *buffer);

/* GST_MAP_CUDA: map GstCudaMemory as a device pointer instead of host staging memory. */
GstMapFlags bd_cuda_map_flag(void);

G_END_DECLS

#endif
