"""Splicing detection by JPEG ghosts.

Follows H. Farid, "Exposing Digital Forgeries From JPEG Ghosts", IEEE Transactions on Information
Forensics and Security 4(1), 2009: recompressing a JPEG at quality q changes it least where q equals
the quality it was last quantised at. A region pasted from an image saved at a lower quality q1, into
an image then saved at q2 > q1, keeps a local minimum of the recompression error at q1: a "ghost"
that the rest of the image does not show. Farid inspects the difference maps by eye; here each
block's error curve over q (normalised by its own level, which removes texture) is compared with the
image's typical curve, and blocks that dip well below it at some q < q2 form the map.
"""
from __future__ import annotations

import cv2
import numpy as np

from .base import TAMPER_METHODS, TamperFinding, as_rgb, cannot_run, downscale, remove_small, resize_mask, score_of

NAME = "jpeg_ghost"


def blockiness(g: np.ndarray) -> float:
    """How much stronger luminance steps are across the 8x8 JPEG grid than inside it (1 = no grid)."""
    f = g.astype(np.float32)
    dx = np.abs(np.diff(f, axis=1)).mean(axis=0)
    dy = np.abs(np.diff(f, axis=0)).mean(axis=1)
    out = []
    for d in (dx, dy):
        n = len(d) // 8 * 8
        if n < 16:
            return 1.0
        phase = d[:n].reshape(-1, 8).mean(axis=0)  # steps between pixel 8k+i and 8k+i+1
        out.append(phase[7] / (np.median(phase[:7]) + 1e-6))
    return float(np.mean(out))


@TAMPER_METHODS.register(NAME)
class JpegGhost:
    """Regions that were JPEG-compressed at a lower quality than the rest of the image.

    Decision threshold: the largest connected region of ghost blocks (map >= 0.5) must cover at least
    `min_area` (1.5%) of the image's textured blocks; a block is a ghost block where its normalised
    error dips `dip_full` (50%) below the image's typical curve. Chosen on the first 150 CIPLAB photos
    (single-compressed): 5% of them reach it; a q60 region in a q95 image covers its whole area.
    """

    kind = "splicing"

    def __init__(self, qualities: tuple[int, ...] = tuple(range(50, 100, 5)), block: int = 16, max_side: int = 1024,
                 min_energy: float = 0.5, dip_full: float = 0.5, min_area: float = 0.015):
        self.qualities, self.block, self.max_side = tuple(qualities), block, max_side
        self.min_energy, self.dip_full, self.min_area = min_energy, dip_full, min_area

    def __call__(self, image_rgb: np.ndarray) -> TamperFinding:
        image = as_rgb(image_rgb)
        shape = image.shape[:2]
        b = self.block
        # Downscaling would destroy the 8x8 grid, so a large image is cropped to its grid-aligned top-left instead.
        h, w = shape
        if min(h, w) < 4 * b:
            return cannot_run(NAME, self.kind, shape, f"image too small ({w}x{h} px) for {b} px blocks")
        ch, cw = min(h, self.max_side), min(w, self.max_side)
        work = image[:ch, :cw]
        bgr = cv2.cvtColor(work, cv2.COLOR_RGB2BGR)
        f = bgr.astype(np.float32)
        nby, nbx = ch // b, cw // b
        curves = []
        for q in self.qualities:
            ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(q)])
            re = cv2.imdecode(data, cv2.IMREAD_COLOR).astype(np.float32)
            d = ((f - re) ** 2).mean(axis=2)[: nby * b, : nbx * b]
            curves.append(d.reshape(nby, b, nbx, b).mean(axis=(1, 3)))
        D = np.stack(curves)  # (Q, nby, nbx): mean squared recompression error per block
        energy = D.mean(axis=0)
        textured = energy >= self.min_energy  # flat blocks barely change at any quality: no evidence
        g = cv2.cvtColor(work, cv2.COLOR_RGB2GRAY)
        grid = blockiness(g)
        if textured.sum() < 16:
            return self._nothing(shape, grid, "too little texture to compare recompression errors")
        N = D / (energy[None] + 1e-6)
        reference = np.median(N[:, textured], axis=1)  # the image's own curve
        whole = D[:, textured].mean(axis=1)
        last_q = self._last_quality(whole)
        # Ghost depth per block and q: how far below the typical (normalised) error it dips; only at
        # qualities below the image's last one (at and above it every block is already close).
        below = np.array([q < (last_q if last_q else 101) - 2 for q in self.qualities])
        if not below.any():
            return self._nothing(shape, grid, f"last saved at quality {last_q}: no lower quality to test")
        dip = (reference[:, None, None] - N) / (reference[:, None, None] + 1e-6)
        dip = np.where(below[:, None, None], dip, -np.inf).max(axis=0)
        ghost_q = np.array(self.qualities)[np.where(below[:, None, None],
                                                    (reference[:, None, None] - N) / (reference[:, None, None] + 1e-6),
                                                    -np.inf).argmax(axis=0)]
        dip = np.where(textured, np.clip(dip, 0, None), 0.0)
        block_map = np.clip(dip / (2 * self.dip_full), 0, 1).astype(np.float32)  # 0.5 at dip_full
        smooth = cv2.GaussianBlur(block_map, (3, 3), 0.8)
        hot = remove_small(smooth >= 0.5, 2)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(hot.astype(np.uint8), connectivity=8)
        largest = int(stats[1:, cv2.CC_STAT_AREA].max()) if n > 1 else 0
        area = largest / float(textured.sum())
        shown = np.where(hot, smooth, smooth * 0.5)  # isolated blocks stay below 0.5
        pixel_map = np.kron(shown, np.ones((b, b), np.float32))
        full = np.zeros(shape, np.float32)
        full[: pixel_map.shape[0], : pixel_map.shape[1]] = pixel_map
        score = score_of(area, self.min_area)
        found = area >= self.min_area
        history = "no sign of earlier JPEG compression (no 8x8 grid)" if grid < 1.05 and last_q is None else (
            f"last saved near quality {last_q}" if last_q else "JPEG grid present")
        if found:
            qs = ghost_q[labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))]
            q1 = int(np.bincount(qs // 5 * 5).argmax())
            message = (f"JPEG ghost: a region of {area:.1%} of the image was compressed at about quality {q1} "
                       f"before the last save ({history})")
        else:
            message = f"no JPEG ghost (largest anomalous region {area:.1%} of the image; {history})"
        detail = {"block": b, "qualities": list(self.qualities), "last_quality": last_q,
                  "blockiness": round(grid, 3), "ghost_area": round(area, 4), "min_area": self.min_area,
                  "textured_blocks": int(textured.sum()), "analysed_size": [int(cw), int(ch)],
                  "mean_error": [round(float(v), 3) for v in whole]}
        return TamperFinding(NAME, self.kind, score, found, np.clip(full, 0, 1), message, detail)

    def _last_quality(self, whole: np.ndarray):
        """The quality the image was last saved at: where the error curve has a clear local dip."""
        qs = self.qualities
        best, best_ratio = None, 0.8
        for i in range(1, len(qs) - 1):
            ratio = whole[i] / (0.5 * (whole[i - 1] + whole[i + 1]) + 1e-9)
            if ratio < best_ratio:
                best, best_ratio = qs[i], ratio
        if best is None and whole[-1] < 0.2 * whole[-2]:
            best = qs[-1]  # error collapses at the top quality: saved at about that quality
        return best

    def _nothing(self, shape, grid, why) -> TamperFinding:
        return TamperFinding(NAME, self.kind, 0.0, False, np.zeros(shape, np.float32), f"no JPEG ghost: {why}",
                             {"block": self.block, "blockiness": round(grid, 3), "ghost_area": 0.0,
                              "min_area": self.min_area})
