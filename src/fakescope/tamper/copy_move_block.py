"""Copy-move detection by exact-ish matching of overlapping blocks.

Follows J. Fridrich, D. Soukal, J. Lukáš, "Detection of Copy-Move Forgery in Digital Images",
Digital Forensic Research Workshop (DFRWS) 2003, with the shift-vector voting also used by
A. C. Popescu, H. Farid, "Exposing Digital Forgeries by Detecting Duplicated Image Regions",
Dartmouth TR2004-515, 2004: every BxB block is described by its low-frequency DCT coefficients,
the descriptions are sorted lexicographically so similar blocks end up next to each other, and a
pair of similar blocks votes for the shift between them. A copied region makes hundreds of blocks
vote for one shift; chance similarities scatter over many shifts. Finds translated copies only
(no rotation or scaling: that is `copy_move_keypoint`).
"""
from __future__ import annotations

import cv2
import numpy as np

from .base import TAMPER_METHODS, TamperFinding, as_rgb, cannot_run, downscale, gray, remove_small, resize_mask, score_of

NAME = "copy_move_block"


def _dct_basis(block: int, keep: int) -> list[np.ndarray]:
    """The `keep` lowest-frequency 2-D DCT-II basis images (zig-zag order by u + v), orthonormal."""
    n = np.arange(block)
    c = [np.sqrt((1 if u == 0 else 2) / block) * np.cos(np.pi * (2 * n + 1) * u / (2 * block)) for u in range(block)]
    order = sorted(((u, v) for u in range(block) for v in range(block)), key=lambda uv: (uv[0] + uv[1], uv[0]))
    return [np.outer(c[u], c[v]).astype(np.float32) for u, v in order[:keep]]


@TAMPER_METHODS.register(NAME)
class CopyMoveBlock:
    """Translated duplicates, on a copy downscaled to `max_side`.

    Decision threshold: block positions making up `min_fraction` (0.3%) of all positions must agree
    on one shift (within 1 px) after an opening that removes isolated pairs; at 384x256 px that is a
    copied region of about 24x24 px. None of the first 60 CIPLAB photos reaches 1/10 of it.
    """

    kind = "copy_move"

    def __init__(self, block: int = 8, max_side: int = 1024, coefficients: int = 10, tolerance: float = 6.0,
                 min_std: float = 4.0, min_shift: int = 16, window: int = 6, min_fraction: float = 0.003,
                 max_shifts: int = 3):
        self.block, self.max_side, self.coefficients = block, max_side, coefficients
        self.tolerance, self.min_std, self.min_shift = tolerance, min_std, min_shift
        self.window, self.min_fraction, self.max_shifts = window, min_fraction, max_shifts

    def __call__(self, image_rgb: np.ndarray) -> TamperFinding:
        image = as_rgb(image_rgb)
        shape = image.shape[:2]
        small, factor = downscale(gray(image), self.max_side)
        B = self.block
        h, w = small.shape
        if min(h, w) < 4 * B:
            return cannot_run(NAME, self.kind, shape, f"image too small ({w}x{h} px) for {B} px blocks")
        f32 = small.astype(np.float32)
        # Block features at every top-left (stride 1): correlation with each DCT basis image.
        feats = []
        for basis in _dct_basis(B, self.coefficients):
            full = cv2.filter2D(f32, cv2.CV_32F, basis, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
            feats.append(full[: h - B + 1, : w - B + 1])
        F = np.stack(feats, axis=-1).reshape(-1, self.coefficients)
        mean = cv2.boxFilter(f32, cv2.CV_32F, (B, B), anchor=(0, 0), normalize=True, borderType=cv2.BORDER_CONSTANT)
        sq = cv2.boxFilter(f32 * f32, cv2.CV_32F, (B, B), anchor=(0, 0), normalize=True, borderType=cv2.BORDER_CONSTANT)
        std = np.sqrt(np.maximum(sq - mean * mean, 0))[: h - B + 1, : w - B + 1].ravel()
        ny, nx = h - B + 1, w - B + 1
        ys, xs = np.divmod(np.arange(ny * nx), nx)
        # Flat blocks (sky, walls, saturated areas) match everything: leave them out.
        valid = np.flatnonzero(std >= self.min_std)
        if valid.size < 2 * self.min_fraction * (h - B + 1) * (w - B + 1):
            return self._nothing(shape, factor, valid.size, "too little texture to compare blocks")
        Fv = F[valid]
        quant = np.floor(Fv / (2 * self.tolerance)).astype(np.int32)
        order = valid[np.lexsort(quant.T[::-1])]
        # Compare each block with the next `window` in sorted order.
        firsts, seconds = [], []
        for k in range(1, self.window + 1):
            a, b = order[:-k], order[k:]
            close = np.max(np.abs(F[a] - F[b]), axis=1) <= self.tolerance
            dx, dy = xs[b] - xs[a], ys[b] - ys[a]
            far = dx * dx + dy * dy >= self.min_shift ** 2
            keep = close & far
            firsts.append(a[keep])
            seconds.append(b[keep])
        a = np.concatenate(firsts)
        b = np.concatenate(seconds)
        if a.size == 0:
            return self._nothing(shape, factor, valid.size, "no similar block pairs")
        # Orient every pair so its shift points into one half-plane: (dx > 0) or (dx == 0 and dy > 0).
        dx, dy = xs[b] - xs[a], ys[b] - ys[a]
        flip = (dx < 0) | ((dx == 0) & (dy < 0))
        a, b = np.where(flip, b, a), np.where(flip, a, b)
        dx, dy = np.where(flip, -dx, dx), np.where(flip, -dy, dy)
        keys = (dx + w) * (2 * h + 1) + (dy + h)
        uniq, counts = np.unique(keys, return_counts=True)
        top = np.argsort(-counts)[: self.max_shifts * 8]
        regions = []
        mask_small = np.zeros((h, w), bool)
        kernel = np.ones((B, B), np.uint8)
        open_k = np.ones((3, 3), np.uint8)
        positions = ny * nx
        for t in top:
            sx, sy = int(uniq[t] // (2 * h + 1) - w), int(uniq[t] % (2 * h + 1) - h)
            if any(abs(sx - r["shift"][0]) <= 2 and abs(sy - r["shift"][1]) <= 2 for r in regions):
                continue
            # A copy's shift is rarely an integer after resampling: its votes spread over neighbouring bins.
            sel = (np.abs(dx - sx) <= 1) & (np.abs(dy - sy) <= 1)
            if sel.sum() < self.min_fraction * positions / 2:
                break
            src = np.zeros((h, w), np.uint8)
            dst = np.zeros((h, w), np.uint8)
            src[ys[a[sel]], xs[a[sel]]] = 1
            dst[ys[b[sel]], xs[b[sel]]] = 1
            # Isolated chance pairs do not survive an opening; a copied region's blocks are contiguous.
            src = cv2.morphologyEx(src, cv2.MORPH_OPEN, open_k)
            dst = cv2.morphologyEx(dst, cv2.MORPH_OPEN, open_k)
            support = int(min(src.sum(), dst.sum()))
            cover_src = cv2.dilate(src, kernel, anchor=(B - 1, B - 1))
            cover_dst = cv2.dilate(dst, kernel, anchor=(B - 1, B - 1))
            regions.append({"shift": [sx, sy], "blocks": support, "src": cover_src, "dst": cover_dst})
            if len(regions) >= self.max_shifts:
                break
        regions.sort(key=lambda r: -r["blocks"])
        best = regions[0]["blocks"] if regions else 0
        fraction = best / float(positions)
        accepted = [r for r in regions if r["blocks"] >= self.min_fraction * positions]
        for r in accepted:
            mask_small |= (r["src"] > 0) | (r["dst"] > 0)
        if mask_small.any():
            mask_small = cv2.morphologyEx(mask_small.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
            mask_small = remove_small(mask_small, B * B * 2)
        score = score_of(fraction, self.min_fraction)
        found = fraction >= self.min_fraction
        scale_back = 1.0 / factor
        if found:
            moved = int(round(mask_small.sum() * scale_back ** 2 / 2))
            shifts = ", ".join(f"({r['shift'][0] * scale_back:+.0f}, {r['shift'][1] * scale_back:+.0f})" for r in accepted)
            message = (f"{len(accepted)} region{'s' if len(accepted) > 1 else ''} copied: about {moved:,} px "
                       f"moved by {shifts}")
        else:
            message = (f"no copied region: at most {best} blocks ({fraction:.2%} of the image) agree on a shift "
                       f"(needs {self.min_fraction:.2%})")
        detail = {
            "block": B, "working_scale": round(factor, 4), "textured_blocks": int(valid.size),
            "matched_pairs": int(a.size), "best_support": int(best), "support_fraction": round(fraction, 5),
            "min_fraction": self.min_fraction,
            "shifts": [{"dx": round(r["shift"][0] * scale_back, 1), "dy": round(r["shift"][1] * scale_back, 1),
                        "blocks": int(r["blocks"]), "accepted": r["blocks"] >= self.min_fraction * positions}
                       for r in regions],
        }
        return TamperFinding(NAME, self.kind, score, found, resize_mask(mask_small, shape), message, detail)

    def _nothing(self, shape, factor, textured, why) -> TamperFinding:
        return TamperFinding(NAME, self.kind, 0.0, False, np.zeros(shape, np.float32), f"no copied region: {why}",
                             {"block": self.block, "working_scale": round(factor, 4), "textured_blocks": int(textured),
                              "best_support": 0, "support_fraction": 0.0, "min_fraction": self.min_fraction, "shifts": []})
