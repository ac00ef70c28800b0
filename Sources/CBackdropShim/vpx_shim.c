/* libvpx calls for vp9alphaenc that Swift cannot make itself; see backdrop_vpx_shim.h. */
#include "backdrop_vpx_shim.h"

#include <string.h>

#include <vpx/vp8cx.h>
#include <vpx/vpx_encoder.h>

int bd_vpx_vp9_config_default(void *cfg) {
  return vpx_codec_enc_config_default(vpx_codec_vp9_cx(), (vpx_codec_enc_cfg_t *)cfg, 0);
}

int bd_vpx_vp9_enc_init(void *ctx, const void *cfg) {
  return vpx_codec_enc_init((vpx_codec_ctx_t *)ctx, vpx_codec_vp9_cx(),
                            (const vpx_codec_enc_cfg_t *)cfg, 0);
}

int bd_vpx_control_int(void *ctx, int control_id, int value) {
  return vpx_codec_control_((vpx_codec_ctx_t *)ctx, control_id, value);
}

void bd_vpx_image_wrap_i420(void *out, unsigned width, unsigned height, const uint8_t *y,
                            int y_stride, const uint8_t *u, int u_stride, const uint8_t *v,
                            int v_stride) {
  vpx_image_t *img = (vpx_image_t *)out;
  memset(img, 0, sizeof(*img));
  img->fmt = VPX_IMG_FMT_I420;
  img->cs = VPX_CS_UNKNOWN;
  img->range = VPX_CR_STUDIO_RANGE;
  img->w = img->d_w = img->r_w = width;
  img->h = img->d_h = img->r_h = height;
  img->x_chroma_shift = 1;
  img->y_chroma_shift = 1;
  img->bps = 12;
  img->planes[VPX_PLANE_Y] = (unsigned char *)y;
  img->planes[VPX_PLANE_U] = (unsigned char *)u;
  img->planes[VPX_PLANE_V] = (unsigned char *)v;
  img->stride[VPX_PLANE_Y] = y_stride;
  img->stride[VPX_PLANE_U] = u_stride;
  img->stride[VPX_PLANE_V] = v_stride;
}

int bd_vpx_next_frame(void *ctx, const void **iter, const void **data, size_t *size,
                      int64_t *pts, uint32_t *flags) {
  const vpx_codec_cx_pkt_t *pkt;
  while ((pkt = vpx_codec_get_cx_data((vpx_codec_ctx_t *)ctx, (vpx_codec_iter_t *)iter)) != NULL) {
    if (pkt->kind != VPX_CODEC_CX_FRAME_PKT) continue;
    *data = pkt->data.frame.buf;
    *size = pkt->data.frame.sz;
    *pts = pkt->data.frame.pts;
    *flags = pkt->data.frame.flags;
    return 1;
  }
  return 0;
}

int bd_vpx_set_active_map(void *ctx, uint8_t *map, unsigned rows, unsigned cols) {
  vpx_active_map_t active = {map, rows, cols};
  return vpx_codec_control_((vpx_codec_ctx_t *)ctx, VP8E_SET_ACTIVEMAP, &active);
}

unsigned bd_alpha_block_activity(const uint8_t *alpha, int stride, int width, int height,
                                 uint8_t *reference, int threshold, int skip_transparent,
                                 int keyframe, uint8_t *alpha_map, uint8_t *colour_map) {
  const int cols = (width + 15) / 16, rows = (height + 15) / 16;
  unsigned coded = 0;
  for (int by = 0; by < rows; by++) {
    const int y0 = by * 16, y1 = y0 + 16 < height ? y0 + 16 : height;
    for (int bx = 0; bx < cols; bx++) {
      const int x0 = bx * 16, n = (x0 + 16 < width ? x0 + 16 : width) - x0;
      int active = keyframe || threshold < 0;
      int opaque_somewhere = 0;
      if (!active) {
        /* Identical rows are common in mattes (flat 0 or 255): memcmp first. */
        int sad = 0;
        for (int y = y0; y < y1 && sad <= threshold; y++) {
          const uint8_t *a = alpha + (size_t)y * stride + x0;
          const uint8_t *r = reference + (size_t)y * width + x0;
          if (memcmp(a, r, n) == 0) continue;
          for (int x = 0; x < n; x++) sad += a[x] > r[x] ? a[x] - r[x] : r[x] - a[x];
        }
        active = sad > threshold;
      }
      if (active) {
        for (int y = y0; y < y1; y++) memcpy(reference + (size_t)y * width + x0, alpha + (size_t)y * stride + x0, n);
        coded++;
      }
      if (skip_transparent && !keyframe) {
        for (int y = y0; y < y1 && !opaque_somewhere; y++) {
          const uint8_t *a = alpha + (size_t)y * stride + x0;
          for (int x = 0; x < n; x++) opaque_somewhere |= a[x];
        }
      } else {
        opaque_somewhere = 1;
      }
      alpha_map[by * cols + bx] = (uint8_t)(active != 0);
      colour_map[by * cols + bx] = (uint8_t)(opaque_somewhere != 0);
    }
  }
  return coded;
}

struct BdVpxWorker {
  GThread *thread;
  GMutex lock;
  GCond cond;
  gboolean has_job, done, quit;
  vpx_codec_ctx_t *ctx;
  const vpx_image_t *img;
  vpx_codec_pts_t pts;
  unsigned long duration;
  vpx_enc_frame_flags_t flags;
  unsigned long deadline;
  vpx_codec_err_t result;
};

static gpointer bd_vpx_worker_main(gpointer data) {
  BdVpxWorker *w = data;
  g_mutex_lock(&w->lock);
  for (;;) {
    while (!w->has_job && !w->quit) g_cond_wait(&w->cond, &w->lock);
    if (w->quit) break;
    w->has_job = FALSE;
    g_mutex_unlock(&w->lock);
    vpx_codec_err_t result =
        vpx_codec_encode(w->ctx, w->img, w->pts, w->duration, w->flags, w->deadline);
    g_mutex_lock(&w->lock);
    w->result = result;
    w->done = TRUE;
    g_cond_broadcast(&w->cond);
  }
  g_mutex_unlock(&w->lock);
  return NULL;
}

BdVpxWorker *bd_vpx_worker_new(void) {
  BdVpxWorker *w = g_new0(BdVpxWorker, 1);
  g_mutex_init(&w->lock);
  g_cond_init(&w->cond);
  w->done = TRUE;
  w->thread = g_thread_new("vp9alpha-worker", bd_vpx_worker_main, w);
  return w;
}

void bd_vpx_worker_start(BdVpxWorker *w, void *ctx, const void *img, int64_t pts,
                         unsigned long duration, long flags, unsigned long deadline) {
  g_mutex_lock(&w->lock);
  w->ctx = ctx;
  w->img = img;
  w->pts = pts;
  w->duration = duration;
  w->flags = flags;
  w->deadline = deadline;
  w->done = FALSE;
  w->has_job = TRUE;
  g_cond_broadcast(&w->cond);
  g_mutex_unlock(&w->lock);
}

int bd_vpx_worker_wait(BdVpxWorker *w) {
  g_mutex_lock(&w->lock);
  while (!w->done) g_cond_wait(&w->cond, &w->lock);
  int result = w->result;
  g_mutex_unlock(&w->lock);
  return result;
}

void bd_vpx_worker_free(BdVpxWorker *w) {
  if (w == NULL) return;
  bd_vpx_worker_wait(w);
  g_mutex_lock(&w->lock);
  w->quit = TRUE;
  g_cond_broadcast(&w->cond);
  g_mutex_unlock(&w->lock);
  g_thread_join(w->thread);
  g_mutex_clear(&w->lock);
  g_cond_clear(&w->cond);
  g_free(w);
}

GType bd_vp9_end_usage_get_type(void) {
  static gsize id = 0;
  static const GEnumValue values[] = {
      {BD_VP9_END_USAGE_VBR, "Variable Bit Rate (VBR) mode", "vbr"},
      {BD_VP9_END_USAGE_CBR, "Constant Bit Rate (CBR) mode", "cbr"},
      {BD_VP9_END_USAGE_CQ, "Constrained Quality (CQ) mode", "cq"},
      {BD_VP9_END_USAGE_Q, "Constant Quality (Q) mode", "q"},
      {0, NULL, NULL}};
  if (g_once_init_enter(&id)) g_once_init_leave(&id, g_enum_register_static("BdVp9EndUsage", values));
  return (GType)id;
}

GstPad *bd_aggregator_pad_new(GType pad_type, const char *name, GstPadTemplate *templ) {
  return GST_PAD(g_object_new(pad_type, "name", name, "direction", GST_PAD_SINK, "template",
                              templ, NULL));
}
