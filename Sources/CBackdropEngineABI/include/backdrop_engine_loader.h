/*
 * backdrop_engine_loader.h — dlopen the engine and resolve the entry points the C/C++ tools use
 * (birefnet-bench, spatial-bench), in one place. The GStreamer element has its own Swift loader
 * (BackdropEngineClient), which also reports its failures on the bus.
 */
#ifndef BACKDROP_ENGINE_LOADER_H
#define BACKDROP_ENGINE_LOADER_H

#include <dlfcn.h>
#include <stdio.h>

#include "backdrop_engine.h"

typedef struct {
  bd_abi_version_fn abi_version;
  bd_engine_version_fn engine_version;
  bd_cuda_device_count_fn cuda_device_count;
  bd_model_open_fn model_open;
  bd_model_get_info_fn model_get_info;
  bd_model_release_fn model_release;
  bd_session_create_fn session_create;
  bd_session_destroy_fn session_destroy;
  bd_session_process_fn session_process;
  bd_session_get_stats_fn session_get_stats;
  bd_session_reset_fn session_reset;
} bd_engine_api;

/* Loads the engine at `path` (RTLD_LOCAL: its libtorch stays out of the caller's namespace) and
 * fills `api`. Returns 0, or -1 with a message naming the file and what is wrong in `err`. */
static inline int bd_engine_api_load(const char *path, bd_engine_api *api, char *err, size_t err_len) {
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    snprintf(err, err_len, "cannot load the engine %s: %s", path, dlerror());
    return -1;
  }
#define BD_LOADER_SYM(field, name)                                                       \
  *(void **)(&api->field) = dlsym(lib, name);                                            \
  if (api->field == NULL) {                                                              \
    snprintf(err, err_len, "%s lacks %s: it is not a Backdrop engine of this version", path, name); \
    return -1;                                                                           \
  }
  BD_LOADER_SYM(abi_version, "bd_abi_version")
  BD_LOADER_SYM(engine_version, "bd_engine_version")
  BD_LOADER_SYM(cuda_device_count, "bd_cuda_device_count")
  BD_LOADER_SYM(model_open, "bd_model_open")
  BD_LOADER_SYM(model_get_info, "bd_model_get_info")
  BD_LOADER_SYM(model_release, "bd_model_release")
  BD_LOADER_SYM(session_create, "bd_session_create")
  BD_LOADER_SYM(session_destroy, "bd_session_destroy")
  BD_LOADER_SYM(session_process, "bd_session_process")
  BD_LOADER_SYM(session_get_stats, "bd_session_get_stats")
  BD_LOADER_SYM(session_reset, "bd_session_reset")
#undef BD_LOADER_SYM
  if (api->abi_version() != BD_ABI_VERSION) {
    snprintf(err, err_len, "%s has engine ABI %u, this program was built for %u: rebuild one of them", path,
             api->abi_version(), (unsigned)BD_ABI_VERSION);
    return -1;
  }
  return 0;
}

#endif /* BACKDROP_ENGINE_LOADER_H */
