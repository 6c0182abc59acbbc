"""Splicing detection by local noise-level inconsistency.

Follows B. Mahdian, S. Saic, "Using noise inconsistencies for blind image forensics", Image and
Vision Computing 27(10), 2009: a region spliced in from another camera, or blurred / denoised /
noised to hide the seam, carries a different noise level from the rest of the image. The noise is
isolated with J. Immerkær's Laplacian-difference kernel ("Fast Noise Variance Estimation", Computer
Vision and Image Understanding 64(2), 1996), which cancels locally linear image content, and its
level is read per block from its flattest spots (a low percentile of the residual's local RMS), so
edges and texture inside a block do not dominate.
"""
from __future__ import annotations

import cv2
import numpy as np

from .base import TAMPER_METHODS, TamperFinding, as_rgb, cannot_run, downscale, gray, remove_small, resize_mask, score_of

NAME = "noise_residual"

# Immerkær's kernel: the difference of two Laplacians; zero response to planes, L2 norm 6.
_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


@TAMPER_METHODS.register(NAME)
class NoiseResidual:
    """Blocks whose noise level is far from the image's typical level (robust z of log sigma).

    Decision threshold: the largest connected region of blocks whose noise is >= `ratio_hot` x the
    median (or <= 1/`ratio_hot_smooth`) must cover `min_area` (4%) of the analysed blocks. Chosen on
    the first 150 CIPLAB photos (one camera, one JPEG save): 4% of them still trip it (out-of-focus,
    JPEG-flattened backgrounds), while sigma-6 noise added to a 128 px square of a smooth photo gives 10%.
    """

    kind = "splicing"

    def __init__(self, block: int = 32, stride: int = 16, max_side: int = 1024, ratio_hot: float = 5.0,
                 ratio_hot_smooth: float = 20.0,
                 min_area: float = 0.04, percentile: float = 20.0, clip_dark: int = 8, clip_bright: int = 247):
        self.block, self.stride, self.max_side = block, stride, max_side
        self.ratio_hot, self.ratio_hot_smooth = ratio_hot, ratio_hot_smooth
        self.min_area, self.percentile = min_area, percentile
        self.clip_dark, self.clip_bright = clip_dark, clip_bright

    def __call__(self, image_rgb: np.ndarray) -> TamperFinding:
        image = as_rgb(image_rgb)
        shape = image.shape[:2]
        # Downscaling averages noise away; only very large images are reduced.
        g, factor = downscale(gray(image), self.max_side)
        h, w = g.shape
        B, S = self.block, self.stride
        if min(h, w) < 2 * B:
            return cannot_run(NAME, self.kind, shape, f"image too small ({w}x{h} px) for {B} px blocks")
        f = g.astype(np.float32)
        residual = cv2.filter2D(f, cv2.CV_32F, _KERNEL, borderType=cv2.BORDER_REFLECT) / 6.0
        # Texture leaks into any residual and only ever adds to it, so each block's level is read from its
        # flattest spots: a low percentile of the residual's local RMS over 5x5 windows.
        local = np.sqrt(np.maximum(cv2.blur(residual * residual, (5, 5)), 0))
        usable = (g > self.clip_dark) & (g < self.clip_bright)  # clipped pixels carry no noise
        ys = list(range(0, h - B + 1, S))
        xs = list(range(0, w - B + 1, S))
        sigma = np.full((len(ys), len(xs)), np.nan, np.float32)
        for i, y in enumerate(ys):
            rows = local[y: y + B]
            urows = usable[y: y + B]
            for j, x in enumerate(xs):
                u = urows[:, x: x + B]
                if u.mean() < 0.5:
                    continue
                sigma[i, j] = np.percentile(rows[:, x: x + B][u], self.percentile)
        ok = np.isfinite(sigma)
        if ok.sum() < 16:
            return cannot_run(NAME, self.kind, shape, "too few blocks without edges or clipping to estimate noise")
        logs = np.log(np.maximum(sigma, 0.05))
        med = float(np.median(logs[ok]))
        mad = float(np.median(np.abs(logs[ok] - med))) * 1.4826
        # Deviation in log units, scaled so the map is 0.5 at `ratio_hot` x the median noise (1 / `ratio_hot_smooth`
        # below it). A fixed scale, not the MAD: noise in one photo varies ~2x between skin, hair and sky anyway,
        # and smoother-than-typical regions need a larger ratio (JPEG flattens out-of-focus backgrounds).
        dev = np.where(ok, logs - med, 0.0).astype(np.float32)
        scale = np.where(dev >= 0, np.log(self.ratio_hot), np.log(self.ratio_hot_smooth))
        block_map = np.clip(0.5 * np.abs(dev) / scale, 0, 1).astype(np.float32)
        z = dev / max(mad, 1e-3)
        spread = max(mad, 1e-3)
        block_map = cv2.GaussianBlur(block_map, (3, 3), 0.8)
        hot = remove_small(block_map >= 0.5, 2)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(hot.astype(np.uint8), connectivity=8)
        largest = int(stats[1:, cv2.CC_STAT_AREA].max()) if n > 1 else 0
        area = largest / float(ok.sum())
        shown = np.where(hot, block_map, np.minimum(block_map, 0.49)).astype(np.float32)
        # Block centres sit at y + B/2; spread each value over its stride cell around the centre.
        grid = np.kron(shown, np.ones((S, S), np.float32))
        full_small = np.zeros((h, w), np.float32)
        off = (B - S) // 2
        gh, gw = min(grid.shape[0], h - off), min(grid.shape[1], w - off)
        full_small[off: off + gh, off: off + gw] = grid[:gh, :gw]
        full_small = cv2.GaussianBlur(full_small, (0, 0), S / 2)
        mask = resize_mask(full_small, shape)
        found = area >= self.min_area
        if found:
            region = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            d_region = float(np.median(dev[region]))
            ratio = float(np.exp(d_region))
            direction = "noisier" if d_region > 0 else "smoother"
            message = (f"noise inconsistency: a region of {area:.0%} of the image is {direction} than the rest "
                       f"(noise x{ratio:.2f}, {abs(d_region) / spread:.1f} robust z)")
        else:
            message = f"consistent noise (largest deviating region {area:.1%} of the image, needs {self.min_area:.0%})"
        detail = {"block": B, "stride": S, "working_scale": round(factor, 4),
                  "noise_sigma_median": round(float(np.exp(med)), 3), "log_sigma_mad": round(mad, 4),
                  "deviating_area": round(area, 4), "min_area": self.min_area,
                  "max_abs_z": round(float(np.abs(z).max()), 2), "blocks": int(ok.sum())}
        return TamperFinding(NAME, self.kind, score_of(area, self.min_area), found, mask, message, detail)
