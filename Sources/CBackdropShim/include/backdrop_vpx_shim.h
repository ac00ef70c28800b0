/*
 * C helpers for vp9alphaenc and webmalphamux: libvpx calls Swift cannot make (vpx_codec_enc_init
 * is a macro, vpx_codec_control is variadic), a worker thread that runs one libvpx encode call
 * while the caller runs the other, and the GEnum of the encoder's rate-control mode.
 * libvpx types are passed as void pointers so this header does not need the libvpx headers (the
 * Swift side sees them through the CVPX module).
 */
#ifndef BACKDROP_VPX_SHIM_H
#define BACKDROP_VPX_SHIM_H

#include <gst/gst.h>
#include <gst/base/base.h>
#include <stddef.h>
#include <stdint.h>

G_BEGIN_DECLS

/* vpx_codec_enc_config_default for VP9 into *cfg (a vpx_codec_enc_cfg_t). Returns a vpx_codec_err_t. */
int bd_vpx_vp9_config_default(void *cfg);
/* vpx_codec_enc_init for VP9 on *ctx (a vpx_codec_ctx_t). Returns a vpx_codec_err_t. */
int bd_vpx_vp9_enc_init(void *ctx, const void *cfg);
/* vpx_codec_control with an int argument. Returns a vpx_codec_err_t. */
int bd_vpx_control_int(void *ctx, int control_id, int value);

/* Points *img (a vpx_image_t) at caller-owned I420 planes without copying. */
void bd_vpx_image_wrap_i420(void *img, unsigned width, unsigned height, const uint8_t *y,
                            int y_stride, const uint8_t *u, int u_stride, const uint8_t *v,
                            int v_stride);

/* The next compressed-frame packet of *ctx (other packet kinds are skipped). Returns 1 and fills
 * the outputs when there is one, 0 at the end. *iter starts NULL. */
int bd_vpx_next_frame(void *ctx, const void **iter, const void **data, size_t *size,
                      int64_t *pts, uint32_t *flags);

/* vpx_codec_control(VP8E_SET_ACTIVEMAP): map has rows x cols bytes, one per 16x16 block
 * (1 = encode, 0 = skip: keep the previous frame's pixels). map NULL clears it. */
int bd_vpx_set_active_map(void *ctx, uint8_t *map, unsigned rows, unsigned cols);

/* Which 16x16 blocks vp9alphaenc's two encoders must code in this frame (rows x cols maps).
 * alpha_map: the block's sum of absolute differences to `reference` (the alpha last coded for
 * that block) exceeds `threshold` (threshold < 0: always); coded blocks are copied into
 * reference (width x height, tightly packed). colour_map: the block has a non-zero alpha
 * pixel, or skip_transparent is 0. keyframe: everything is coded and reference reset.
 * Returns the number of alpha blocks to code. */
unsigned bd_alpha_block_activity(const uint8_t *alpha, int stride, int width, int height,
                                 uint8_t *reference, int threshold, int skip_transparent,
                                 int keyframe, uint8_t *alpha_map, uint8_t *colour_map);

/* A worker thread that runs vpx_codec_encode on another encoder while the caller encodes. */
typedef struct BdVpxWorker BdVpxWorker;
BdVpxWorker *bd_vpx_worker_new(void);
/* Starts vpx_codec_encode(ctx, img (NULL = drain), pts, duration, flags, deadline). */
void bd_vpx_worker_start(BdVpxWorker *worker, void *ctx, const void *img, int64_t pts,
                         unsigned long duration, long flags, unsigned long deadline);
/* Waits for the started call; returns its vpx_codec_err_t. */
int bd_vpx_worker_wait(BdVpxWorker *worker);
void bd_vpx_worker_free(BdVpxWorker *worker);

/* ---- GEnum of vp9alphaenc's end-usage (same nicks as vp9enc) ---- */
typedef enum {
  BD_VP9_END_USAGE_VBR = 0,
  BD_VP9_END_USAGE_CBR = 1,
  BD_VP9_END_USAGE_CQ = 2,
  BD_VP9_END_USAGE_Q = 3,
} BdVp9EndUsage;
GType bd_vp9_end_usage_get_type(void);

/* ---- webmalphamux helpers ---- */
/* A new GstAggregatorPad of pad_type named name from templ (g_object_new is variadic). */
GstPad *bd_aggregator_pad_new(GType pad_type, const char *name, GstPadTemplate *templ);

G_END_DECLS

#endif
