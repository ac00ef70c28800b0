/*
 * backdrop_engine.h — the plain C ABI of libbackdrop-torch.so.
 *
 * The GStreamer plugin dlopens the engine at READY→PAUSED and resolves these symbols by name, so
 * no C++ type, exception or libtorch ABI ever crosses this boundary. Every call that can fail
 * returns a bd_status and writes a human-readable, NUL-terminated message into the caller's
 * error buffer (err, err_len); err may be NULL when the caller does not want the text.
 *
 * Bump BD_ABI_VERSION whenever a struct layout or a signature below changes: the element refuses
 * an engine whose bd_abi_version() differs and names both numbers.
 */
#ifndef BACKDROP_ENGINE_H
#define BACKDROP_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BD_ABI_VERSION 4u

#if defined(__GNUC__)
#define BD_EXPORT __attribute__((visibility("default")))
#else
#define BD_EXPORT
#endif

typedef enum {
  BD_OK = 0,
  BD_ERR_INVALID_ARGUMENT = 1, /* a caller mistake: bad size, format, pointer */
  BD_ERR_MODEL = 2,            /* model file missing, unreadable, corrupt or wrong contract */
  BD_ERR_DEVICE = 3,           /* device unavailable (e.g. CUDA requested without CUDA) */
  BD_ERR_RUNTIME = 4,          /* anything libtorch threw while processing */
} bd_status;

/* Pixel formats, named as GStreamer names them. Plane layout follows GstVideoInfo. */
typedef enum {
  BD_FORMAT_I420 = 0,
  BD_FORMAT_NV12 = 1,
  BD_FORMAT_RGBA = 2,
  BD_FORMAT_BGRA = 3,
  BD_FORMAT_RGBX = 4,
  BD_FORMAT_BGRX = 5,
  BD_FORMAT_RGB = 6,
  BD_FORMAT_BGR = 7,
  BD_FORMAT_A420 = 8,  /* output only: I420 plus a full-resolution alpha plane (plane 3) */
  BD_FORMAT_GRAY8 = 9, /* output only: the matte itself */
} bd_pixel_format;

typedef enum {
  BD_DEVICE_AUTO = 0, /* CUDA when the engine has it and a GPU is present, else CPU */
  BD_DEVICE_CPU = 1,
  BD_DEVICE_CUDA = 2,
} bd_device_kind;

typedef enum {
  BD_PRECISION_AUTO = 0, /* FP32 on CPU, FP16 on CUDA */
  BD_PRECISION_FP32 = 1,
  BD_PRECISION_FP16 = 2,
  BD_PRECISION_BF16 = 3,
} bd_precision;

/* Order of the image-patch channels fed to BiRefNet's decoder (changed upstream in Nov 2024). */
typedef enum {
  BD_PATCH_ORDER_AUTO = 0,    /* from the file's metadata, else current */
  BD_PATCH_ORDER_CURRENT = 1, /* (c hg wg) */
  BD_PATCH_ORDER_LEGACY = 2,  /* (wg hg c), weights trained before 2024-11 */
} bd_patch_order;

typedef enum {
  BD_MODEL_TORCHSCRIPT = 0,
  BD_MODEL_BIREFNET = 1,
} bd_model_kind;

typedef enum {
  BD_MATRIX_BT601 = 0,
  BD_MATRIX_BT709 = 1,
  BD_MATRIX_BT2020 = 2,
} bd_matrix;

typedef enum {
  BD_BACKGROUND_NONE = 0,  /* keep the subject, write the matte as alpha */
  BD_BACKGROUND_COLOR = 1, /* a solid colour (green screen is a colour) */
  BD_BACKGROUND_IMAGE = 2, /* the image given with bd_session_set_background_image */
  BD_BACKGROUND_BLUR = 3,  /* the frame itself, blurred */
} bd_background;

/* spatial refinement (issue 9) */
typedef enum {
  BD_EDGE_REFINE_NONE = 0,   /* bilinear upsampling of the inference-size probability */
  BD_EDGE_REFINE_GUIDED = 1, /* fast guided filter guided by the full-resolution frame, in the uncertain band */
} bd_edge_refine;

typedef enum {
  BD_CASCADE_OFF = 0,
  BD_CASCADE_AUTO = 1, /* when the frame is larger than the inference size: tiles where the matte is uncertain */
} bd_cascade;

/* Where the planes of bd_frame live (issue 14). */
typedef enum {
  BD_MEMORY_SYSTEM = 0, /* host pointers (the default) */
  BD_MEMORY_CUDA = 1,   /* CUDA device pointers on the session's GPU (e.g. GstCudaMemory mapped with
                           GST_MAP_CUDA); only for a session on CUDA, in an engine built with CUDA */
} bd_memory_kind;

/* What a model's output [B,1,H,W] holds. */
typedef enum {
  BD_MODEL_OUTPUT_LOGITS = 0,      /* logits: the session applies the sigmoid (BiRefNet, the default) */
  BD_MODEL_OUTPUT_PROBABILITY = 1, /* probabilities 0..1: the model ends with its own sigmoid (many
                                      TorchScript exports); clamped to 0..1. TorchScript only */
} bd_model_output;

typedef struct bd_model bd_model;
typedef struct bd_session bd_session;

typedef struct {
  const char *path;        /* TorchScript (.pt/.ts) or BiRefNet .safetensors, told apart by content */
  bd_device_kind device;
  int device_index;        /* for BD_DEVICE_CUDA: which GPU; ignored otherwise */
  bd_precision precision;
  bd_patch_order patch_order;
  int threads;             /* CPU threads for libtorch; <= 0 means the number of cores */
} bd_model_options;

typedef struct {
  bd_model_kind kind;
  bd_device_kind device; /* resolved: never AUTO */
  int device_index;
  bd_precision precision; /* resolved: never AUTO */
  int native_width;       /* the size the model prefers (TorchScript: its extra file
                             "backdrop/inference_size", e.g. "256x256"), 0 when unknown */
  int native_height;
  char description[256];  /* e.g. "BiRefNet swin_v1_t (legacy patch order)" */
} bd_model_info;

typedef struct {
  int width, height;            /* stream size */
  bd_pixel_format input_format;
  bd_pixel_format output_format;
  bd_matrix input_matrix;       /* used when the input is YUV */
  int input_full_range;         /* 1: 0..255 YUV, 0: 16..235/240 */
  bd_matrix output_matrix;      /* used when the output is YUV */
  int output_full_range;
  int inference_width;          /* model input size; BiRefNet wants multiples of 32 */
  int inference_height;
  int max_batch;                /* largest n bd_session_process will be given */
  /* CUDA memory in and out (issue 14); all zero = host memory, the session's own stream */
  bd_memory_kind input_memory;  /* where the input planes live */
  bd_memory_kind output_memory; /* where the output planes live */
  void *cuda_stream;            /* cudaStream_t/CUstream on the session's GPU to order the work on
                                   (the caller synchronises it); NULL: the session's own stream, and
                                   bd_session_process returns once the frames are written */
  /* temporal (issue 9), fixed for the session's life. 1: one-frame look-ahead. Each frame's matte
     also sees the next frame (flow-warped onto it), which removes single-frame blips; outputs
     come one frame late (see bd_session_process and bd_session_drain). 0: off. */
  int temporal_lookahead;
  bd_model_output model_output; /* how to read the model's output; zero: logits */
} bd_session_config;

/* Parameters that may change between batches. */
typedef struct {
  float threshold;        /* binary matte: alpha = 255 where probability >= threshold, else 0 */
  int soft;               /* 1: alpha = round(255 * probability), threshold ignored */
  bd_background background;
  uint8_t color[3];       /* RGB for BD_BACKGROUND_COLOR */
  float blur_sigma;       /* BD_BACKGROUND_BLUR: Gaussian sigma in output pixels */
  /* temporal (issue 9); all zero = every frame inferred on its own, as before */
  float temporal_smooth;     /* 0..0.95: weight of the flow-warped previous matte; 0 = off */
  int infer_interval;        /* the model runs on every k-th frame, the others are propagated; <= 1: all */
  float skip_similar_db;     /* no inference while the PSNR (dB) to the last inferred frame is >= this; 0 = off */
  float scene_cut_threshold; /* histogram distance 0..1 above which a frame starts a new scene; 0 = off */
  /* spatial refinement (issue 9) */
  bd_edge_refine edge_refine; /* how the inference-size matte reaches the stream size */
  int foreground_estimate;    /* 1: estimate the subject's own colour in semi-transparent pixels
                                 (composites and straight-alpha output lose the old background's halo) */
  bd_cascade cascade;         /* re-infer the uncertain band in tiles at a higher resolution */
  int cascade_size;           /* cascade tile side in stream pixels (each tile is inferred at the
                                 inference size); <= 0: 512 */
} bd_composite_params;

/* One video frame: plane pointers and strides in bytes, as GstVideoFrame maps them. */
typedef struct {
  uint8_t *planes[4];
  int32_t strides[4];
} bd_frame;

/* Counters of a session since it was created (bd_session_reset does not clear them). */
typedef struct {
  uint64_t frames;            /* frames processed */
  uint64_t frames_inferred;   /* frames the model ran on */
  uint64_t frames_skipped;    /* frames whose matte was propagated from earlier ones, no inference */
  uint64_t scene_cuts;        /* detected scene cuts (each resets the temporal state) */
  uint64_t nan_frames;        /* frames whose model output held NaN */
  uint64_t nan_pixels;        /* NaN probabilities, each treated as background */
  uint64_t frames_unit_range; /* inferred frames whose whole raw model output lay within [0, 1]:
                                 read as logits, every pixel is unsure foreground (p 0.5-0.73),
                                 which is what a model that returns probabilities gives */
} bd_session_stats;

/* Library identity. */
BD_EXPORT uint32_t bd_abi_version(void);
BD_EXPORT const char *bd_engine_version(void); /* e.g. "backdrop-torch 0.1 (libtorch 1.13.1, CUDA: no)" */
BD_EXPORT int bd_cuda_device_count(void);       /* 0 when built without CUDA or no GPU */

/* Models are cached per process by (path, device, precision, patch order) and reference
 * counted: opening the same file twice returns the same weights. */
BD_EXPORT bd_status bd_model_open(const bd_model_options *options, bd_model **out_model,
                                  char *err, size_t err_len);
BD_EXPORT void bd_model_get_info(const bd_model *model, bd_model_info *out_info);
BD_EXPORT void bd_model_release(bd_model *model);

/* A session holds everything one stream needs: buffers, geometry, formats. It validates the
 * model's contract with a probe forward pass at the inference size. */
BD_EXPORT bd_status bd_session_create(bd_model *model, const bd_session_config *config,
                                      bd_session **out_session, char *err, size_t err_len);
BD_EXPORT void bd_session_destroy(bd_session *session);

/* Background picture for BD_BACKGROUND_IMAGE: packed RGB (3 bytes a pixel) at the stream size. */
BD_EXPORT bd_status bd_session_set_background_image(bd_session *session, const uint8_t *rgb,
                                                    int32_t stride, int width, int height,
                                                    char *err, size_t err_len);

/* Process n frames (1 <= n <= max_batch) in one call and write the results straight into the
 * output frames. Inputs and outputs may not alias.
 *
 * With temporal_lookahead the outputs are one frame late: the session keeps its own copy of the
 * newest frame (the caller may free its buffer) and writes the frames, in arrival order, that now
 * have their successor. So `outputs` holds n frames when a frame was held before the call and
 * n - 1 when none was (the first call after create, reset or a drain; with n = 1 nothing is
 * written and `outputs` may be NULL). On failure the held frame is dropped, as by reset. */
BD_EXPORT bd_status bd_session_process(bd_session *session, const bd_frame *inputs,
                                       const bd_frame *outputs, int n,
                                       const bd_composite_params *params, char *err,
                                       size_t err_len);

/* temporal_lookahead: finish the held frame without its successor into `output` (one frame) and
 * set *written to 1; *written = 0 when nothing is held (or look-ahead is off), `output` untouched.
 * Call it where the stream pauses or ends (EOS, caps, DISCONT, serialized events). The temporal
 * history is kept: the next frame continues the stream as if the held one had been the last of a
 * batch. `params` composite the held frame (as bd_session_process's would). On failure the held
 * frame is dropped, as by reset. */
BD_EXPORT bd_status bd_session_drain(bd_session *session, const bd_frame *output,
                                     const bd_composite_params *params, int *written, char *err,
                                     size_t err_len);

/* Counters since the session was created. */
BD_EXPORT void bd_session_get_stats(const bd_session *session, bd_session_stats *out_stats);

/* Forget all state carried from one batch to the next (previous mattes, frames, flow, the frame
 * held by temporal_lookahead, which is dropped unwritten): called at FLUSH (and after a drain at
 * DISCONT and caps changes) so that the next frame is processed as the first of a stream. */
BD_EXPORT void bd_session_reset(bd_session *session);

/* Function-pointer types of the entry points, for callers that resolve them with dlsym. */
typedef uint32_t (*bd_abi_version_fn)(void);
typedef const char *(*bd_engine_version_fn)(void);
typedef int (*bd_cuda_device_count_fn)(void);
typedef bd_status (*bd_model_open_fn)(const bd_model_options *, bd_model **, char *, size_t);
typedef void (*bd_model_get_info_fn)(const bd_model *, bd_model_info *);
typedef void (*bd_model_release_fn)(bd_model *);
typedef bd_status (*bd_session_create_fn)(bd_model *, const bd_session_config *, bd_session **,
                                          char *, size_t);
typedef void (*bd_session_destroy_fn)(bd_session *);
typedef bd_status (*bd_session_set_background_image_fn)(bd_session *, const uint8_t *, int32_t,
                                                        int, int, char *, size_t);
typedef bd_status (*bd_session_process_fn)(bd_session *, const bd_frame *, const bd_frame *, int,
                                           const bd_composite_params *, char *, size_t);
typedef bd_status (*bd_session_drain_fn)(bd_session *, const bd_frame *, const bd_composite_params *,
                                         int *, char *, size_t);
typedef void (*bd_session_get_stats_fn)(const bd_session *, bd_session_stats *);
typedef void (*bd_session_reset_fn)(bd_session *);

#ifdef __cplusplus
}
#endif

#endif /* BACKDROP_ENGINE_H */
