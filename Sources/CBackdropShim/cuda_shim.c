/* The gstcuda calls of birefnetmatte (backdrop_shim.h, "CUDA memory"), resolved with dlopen/dlsym. The
 * signatures below are gstcuda's 1.22 API with GstCudaContext* written as GstObject*. */
#include "backdrop_shim.h"

#include <dlfcn.h>

#include <gst/video/video.h>

static struct {
  gboolean (*ensure_element_context)(GstElement *, gint, GstObject **);
  gboolean (*handle_context_query)(GstElement *, GstQuery *, GstObject *);
  gboolean (*handle_set_context)(GstElement *, GstContext *, gint, GstObject **);
  GstBufferPool *(*buffer_pool_new)(GstObject *);
  gboolean (*is_cuda_memory)(GstMemory *);
  void (*memory_init_once)(void);
  /* GStreamer >= 1.24 only (NULL on 1.22): there, GstCudaMemory may carry work still queued on the
   * stream of the element that made it (GST_CUDA_MEMORY_TRANSFER_NEED_SYNC), and a GST_MAP_CUDA map
   * does not wait for it; the reader must. 1.22 has no per-memory streams: its producers finish
   * their copies before they push. */
  void (*memory_sync)(GstMemory *);
  /* 1.22: wrap an existing CUcontext (libtorch's, below) and put it in a GstContext. */
  GstObject *(*context_new_wrapped)(void *, int);
  GstContext *(*context_new_cuda_context)(GstObject *);
  const char *why;
  gboolean ok;
} cuda;

static gpointer load_library(gpointer unused) {
  (void)unused;
  void *library = dlopen("libgstcuda-1.0.so.0", RTLD_NOW | RTLD_LOCAL);
  if (library == NULL) {
    cuda.why = "libgstcuda-1.0.so.0 (gst-plugins-bad's CUDA library) cannot be loaded";
    return NULL;
  }
#define RESOLVE(field, name)                                                    \
  if ((*(void **)&cuda.field = dlsym(library, name)) == NULL) {                 \
    cuda.why = "libgstcuda-1.0.so.0 lacks " name " (GStreamer 1.22 or later is needed)"; \
    return NULL;                                                                \
  }
  RESOLVE(ensure_element_context, "gst_cuda_ensure_element_context");
  RESOLVE(handle_context_query, "gst_cuda_handle_context_query");
  RESOLVE(handle_set_context, "gst_cuda_handle_set_context");
  RESOLVE(buffer_pool_new, "gst_cuda_buffer_pool_new");
  RESOLVE(is_cuda_memory, "gst_is_cuda_memory");
  RESOLVE(memory_init_once, "gst_cuda_memory_init_once");
#undef RESOLVE
  *(void **)&cuda.memory_sync = dlsym(library, "gst_cuda_memory_sync");
  *(void **)&cuda.context_new_wrapped = dlsym(library, "gst_cuda_context_new_wrapped");
  *(void **)&cuda.context_new_cuda_context = dlsym(library, "gst_context_new_cuda_context");
  cuda.memory_init_once();
  cuda.ok = TRUE;
  return NULL;
}

gboolean bd_cuda_library_available(const char **why) {
  static GOnce once = G_ONCE_INIT;
  g_once(&once, load_library, NULL);
  if (!cuda.ok && why != NULL) *why = cuda.why;
  return cuda.ok;
}

/* The search running on this thread (a NEED_CONTEXT the bin answers synchronously), for
 * bd_cuda_context_was_set. */
static _Thread_local struct {
  GstElement *element;
  int device_index;
  GstObject **context;
} searching;

static void begin_search(GstElement *element, int device_index, GstObject **context) {
  searching.element = element;
  searching.device_index = device_index;
  searching.context = context;
}

static void end_search(void) {
  searching.element = NULL;
  searching.context = NULL;
}

GstObject *bd_cuda_context_for_device(GstElement *element, int device_index) {
  if (!bd_cuda_library_available(NULL)) return NULL;
  GstObject *context = NULL;
  begin_search(element, device_index, &context);
  const gboolean found = cuda.ensure_element_context(element, device_index, &context);
  end_search();
  if (!found) {
    if (context != NULL) gst_object_unref(context);
    return NULL;
  }
  return context;
}

void bd_cuda_context_was_set(GstElement *element, GstContext *context) {
  if (searching.element != element || searching.context == NULL || !bd_cuda_library_available(NULL)) return;
  cuda.handle_set_context(element, context, searching.device_index, searching.context);
}

/* ---- libtorch's CUDA context, offered to the pipeline ---------------------------------------
 * libtorch (the CUDA runtime) works in each GPU's primary context, while gstcuda makes contexts of
 * its own (cuCtxCreate): a decoder's frames would then live in another context than the engine that
 * reads them, a copy between contexts. Offering the primary context first puts both in one. */
static struct {
  int (*init)(unsigned int);
  int (*device_get)(int *, int);
  int (*primary_retain)(void **, int);
  int (*primary_release)(int);
  const char *why;
  gboolean ok;
} driver;

static gpointer load_driver(gpointer unused) {
  (void)unused;
  void *library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (library == NULL) {
    driver.why = "the NVIDIA driver's libcuda.so.1 cannot be loaded";
    return NULL;
  }
  *(void **)&driver.init = dlsym(library, "cuInit");
  *(void **)&driver.device_get = dlsym(library, "cuDeviceGet");
  *(void **)&driver.primary_retain = dlsym(library, "cuDevicePrimaryCtxRetain");
  /* CUDA 11 renamed the release call (the old one stays for old binaries). */
  if ((*(void **)&driver.primary_release = dlsym(library, "cuDevicePrimaryCtxRelease_v2")) == NULL)
    *(void **)&driver.primary_release = dlsym(library, "cuDevicePrimaryCtxRelease");
  if (!driver.init || !driver.device_get || !driver.primary_retain || !driver.primary_release) {
    driver.why = "libcuda.so.1 lacks the primary-context calls";
    return NULL;
  }
  if (driver.init(0) != 0) {
    driver.why = "cuInit failed (no usable NVIDIA GPU or driver)";
    return NULL;
  }
  driver.ok = TRUE;
  return NULL;
}

static void release_primary_context(gpointer device, GObject *wrapper) {
  (void)wrapper;
  driver.primary_release(GPOINTER_TO_INT(device));
}

/* Peers, then the bin and the application (NEED_CONTEXT, answered synchronously through
 * bd_cuda_context_was_set), as gst_cuda_ensure_element_context looks, but without making one. */
static GstObject *find_pipeline_context(GstElement *element, int device_index) {
  GstObject *context = NULL;
  GstQuery *query = gst_query_new_context("gst.cuda.context");
  GstPad *pads[2] = {gst_element_get_static_pad(element, "src"), gst_element_get_static_pad(element, "sink")};
  for (int i = 0; i < 2 && context == NULL; i++) {
    if (pads[i] == NULL || !gst_pad_peer_query(pads[i], query)) continue;
    GstContext *found = NULL;
    gst_query_parse_context(query, &found);
    if (found != NULL) cuda.handle_set_context(element, found, device_index, &context);
  }
  for (int i = 0; i < 2; i++)
    if (pads[i] != NULL) gst_object_unref(pads[i]);
  gst_query_unref(query);
  if (context == NULL) {
    begin_search(element, device_index, &context);
    gst_element_post_message(element, gst_message_new_need_context(GST_OBJECT(element), "gst.cuda.context"));
    end_search();
  }
  return context;
}

GstObject *bd_cuda_share_primary_context(GstElement *element, int device_index, const char **why) {
  static GOnce once = G_ONCE_INIT;
  if (!bd_cuda_library_available(why)) return NULL;
  if (cuda.context_new_wrapped == NULL || cuda.context_new_cuda_context == NULL) {
    if (why) *why = "libgstcuda-1.0.so.0 cannot wrap a CUDA context";
    return NULL;
  }
  /* One the pipeline already has (an application's, a neighbour's) is used as it is. */
  GstObject *context = find_pipeline_context(element, device_index);
  if (context != NULL) return context;
  g_once(&once, load_driver, NULL);
  if (!driver.ok) {
    if (why) *why = driver.why;
    return NULL;
  }
  int device = 0;
  void *primary = NULL;
  if (driver.device_get(&device, device_index) != 0 || driver.primary_retain(&primary, device) != 0) {
    if (why) *why = "the GPU's primary CUDA context cannot be retained (is device-index valid?)";
    return NULL;
  }
  context = cuda.context_new_wrapped(primary, device);
  if (context == NULL) {
    driver.primary_release(device);
    if (why) *why = "gst_cuda_context_new_wrapped failed";
    return NULL;
  }
  /* The wrapper does not own the context: the retain above is released with the last reference. */
  g_object_weak_ref(G_OBJECT(context), release_primary_context, GINT_TO_POINTER(device));
  GstContext *shared = cuda.context_new_cuda_context(context);
  gst_element_post_message(element, gst_message_new_have_context(GST_OBJECT(element), shared));
  return context;
}

gboolean bd_cuda_answer_context_query(GstElement *element, GstQuery *query, GstObject *context) {
  if (context == NULL || !bd_cuda_library_available(NULL)) return FALSE;
  return cuda.handle_context_query(element, query, context);
}

GstBufferPool *bd_cuda_buffer_pool_new(GstObject *context, GstCaps *caps, guint size) {
  if (context == NULL || !bd_cuda_library_available(NULL)) return NULL;
  GstBufferPool *pool = cuda.buffer_pool_new(context);
  if (pool == NULL) return NULL;
  GstStructure *config = gst_buffer_pool_get_config(pool);
  gst_buffer_pool_config_set_params(config, caps, size, 0, 0);
  gst_buffer_pool_config_add_option(config, GST_BUFFER_POOL_OPTION_VIDEO_META);
  if (!gst_buffer_pool_set_config(pool, config) || !gst_buffer_pool_set_active(pool, TRUE)) {
    gst_object_unref(pool);
    return NULL;
  }
  return pool;
}

gboolean bd_cuda_buffer_is_device(GstBuffer *buffer) {
  if (!bd_cuda_library_available(NULL) || gst_buffer_n_memory(buffer) == 0) return FALSE;
  return cuda.is_cuda_memory(gst_buffer_peek_memory(buffer, 0));
}

int bd_cuda_buffer_sync(GstBuffer *buffer) {
  if (!bd_cuda_library_available(NULL) || cuda.memory_sync == NULL) return 0;
  int synced = 0;
  for (guint i = 0; i < gst_buffer_n_memory(buffer); i++) {
    GstMemory *memory = gst_buffer_peek_memory(buffer, i);
    if (!cuda.is_cuda_memory(memory)) continue;
    cuda.memory_sync(memory); /* returns at once unless the memory has pending work */
    synced++;
  }
  return synced;
}

/* GST_MAP_CUDA as gstcudamemory.h defines it. */
GstMapFlags bd_cuda_map_flag(void) { return (GstMapFlags)(GST_MAP_FLAG_LAST << 1); }
