"""Copy-move detection by matching keypoints of an image against themselves.

Follows I. Amerini, L. Ballan, R. Caldelli, A. Del Bimbo, G. Serra, "A SIFT-Based Forensic Method
for Copy-Move Attack Detection and Transformation Recovery", IEEE Transactions on Information
Forensics and Security 6(3), 2011: SIFT descriptors matched within the image with the generalised
2-nearest-neighbour (g2NN) test, which keeps every match much closer than the next one (a region
copied twice has two twins); the matches are grouped and an affine transform is fitted to each group
by RANSAC, so rotated and scaled copies are found. Where the region lies is recovered as in
X. Pan, S. Lyu, "Region Duplication Detection Using Image Feature Matching", IEEE TIFS 5(4), 2010:
the image is compared with itself warped by the fitted transform, and pixels whose neighbourhood
correlates strongly with their warped twin, near the matched points, are the copy and its source.
"""
from __future__ import annotations

import cv2
import numpy as np

from .base import TAMPER_METHODS, TamperFinding, as_rgb, cannot_run, gray, remove_small, resize_mask, score_of

NAME = "copy_move_keypoint"


def _local_correlation(a: np.ndarray, b: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of a and b over (2r+1)^2 windows, and the smaller of the two local stds."""
    k = (2 * radius + 1, 2 * radius + 1)
    ma, mb = cv2.blur(a, k), cv2.blur(b, k)
    va = np.maximum(cv2.blur(a * a, k) - ma * ma, 0)
    vb = np.maximum(cv2.blur(b * b, k) - mb * mb, 0)
    cov = cv2.blur(a * b, k) - ma * mb
    corr = cov / np.sqrt(va * vb + 1e-6)
    return corr, np.sqrt(np.minimum(va, vb))


@TAMPER_METHODS.register(NAME)
class CopyMoveKeypoint:
    """Copied regions under any affine transform (translation, rotation, scale).

    Works at `work_side` px on the longest side (small images are upsampled so SIFT finds enough
    keypoints, large ones downsampled for speed). Decision threshold: a transform supported by
    `min_inliers` RANSAC inliers; chance g2NN matches in pristine photos rarely agree on one affine
    transform with more than a handful of points: on the first 200 CIPLAB photos the best had 9.
    """

    kind = "copy_move"

    def __init__(self, work_side: int = 768, ratio: float = 0.6, neighbours: int = 8, min_distance: float = 30.0,
                 ransac_px: float = 4.0, min_inliers: int = 12, max_regions: int = 3, max_keypoints: int = 6000,
                 corr_radius: int = 3, corr_threshold: float = 0.55, min_std: float = 2.0):
        self.work_side, self.ratio, self.neighbours = work_side, ratio, neighbours
        self.min_distance, self.ransac_px, self.min_inliers = min_distance, ransac_px, min_inliers
        self.max_regions, self.max_keypoints = max_regions, max_keypoints
        self.corr_radius, self.corr_threshold, self.min_std = corr_radius, corr_threshold, min_std

    def _features(self, g: np.ndarray):
        try:
            detector, norm = cv2.SIFT_create(nfeatures=self.max_keypoints), cv2.NORM_L2
            name = "sift"
        except AttributeError:  # an OpenCV build without SIFT
            detector, norm, name = cv2.ORB_create(nfeatures=self.max_keypoints), cv2.NORM_HAMMING, "orb"
        keypoints, descriptors = detector.detectAndCompute(g, None)
        return keypoints, descriptors, norm, name

    def _g2nn(self, descriptors: np.ndarray, points: np.ndarray, norm: int) -> np.ndarray:
        """Pairs (i, j), i < j, kept by g2NN: d_k / d_{k+1} < ratio for all k up to the last such k."""
        k = min(self.neighbours + 1, len(descriptors))
        matcher = cv2.BFMatcher(norm)
        pairs = set()
        for row in matcher.knnMatch(descriptors, descriptors, k=k):
            others = [m for m in row if m.trainIdx != m.queryIdx]
            d = np.array([m.distance for m in others], np.float64)
            if d.size < 2:
                continue
            ok = d[:-1] < self.ratio * d[1:]
            if not ok.any():
                continue
            last = int(np.flatnonzero(ok)[-1])  # matches 0..last are much closer than the rest
            for m in others[: last + 1]:
                i, j = sorted((m.queryIdx, m.trainIdx))
                if np.hypot(*(points[i] - points[j])) >= self.min_distance:
                    pairs.add((i, j))
        return np.array(sorted(pairs), np.int64).reshape(-1, 2)

    def __call__(self, image_rgb: np.ndarray) -> TamperFinding:
        image = as_rgb(image_rgb)
        shape = image.shape[:2]
        h0, w0 = shape
        if min(h0, w0) < 32:
            return cannot_run(NAME, self.kind, shape, f"image too small ({w0}x{h0} px) for keypoint matching")
        factor = self.work_side / max(h0, w0)
        size = (max(1, round(w0 * factor)), max(1, round(h0 * factor)))
        g = cv2.resize(gray(image), size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
        h, w = g.shape
        keypoints, descriptors, norm, detector = self._features(g)
        base_detail = {"detector": detector, "keypoints": len(keypoints), "working_scale": round(factor, 4),
                       "min_inliers": self.min_inliers}
        if descriptors is None or len(keypoints) < 3:
            return TamperFinding(NAME, self.kind, 0.0, False, np.zeros(shape, np.float32),
                                 f"no copied region: only {len(keypoints)} keypoints (too little texture)",
                                 {**base_detail, "matches": 0, "regions": []})
        points = np.array([kp.pt for kp in keypoints], np.float32)
        pairs = self._g2nn(descriptors, points, norm)
        regions = []
        remaining = pairs
        # Sequential RANSAC: fit the strongest transform, take its matches out, look again. Each match
        # enters in both directions, as a copy's pairs come in no fixed source/destination order.
        while len(remaining) >= 3 and len(regions) < self.max_regions:
            src = np.concatenate([points[remaining[:, 0]], points[remaining[:, 1]]])
            dst = np.concatenate([points[remaining[:, 1]], points[remaining[:, 0]]])
            A, inl = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=self.ransac_px,
                                          maxIters=4000, confidence=0.995, refineIters=10)
            if A is None:
                break
            inl = inl.ravel().astype(bool)
            n = len(remaining)
            used = inl[:n] | inl[n:]
            forward = inl[:n] & ~inl[n:]
            backward = inl[n:] & ~inl[:n]
            # Orient every inlier pair the way A maps it, and refit on those alone.
            s_pts = np.concatenate([points[remaining[forward, 0]], points[remaining[backward, 1]]])
            d_pts = np.concatenate([points[remaining[forward, 1]], points[remaining[backward, 0]]])
            count = len(s_pts)
            sv = np.linalg.svd(A[:, :2], compute_uv=False)
            moved = float(np.median(np.hypot(*(d_pts - s_pts).T))) if count else 0.0
            spread = float(np.sqrt(np.prod(np.ptp(s_pts, axis=0) + 1))) if count else 0.0
            plausible = (count >= 3 and 0.25 < sv[1] <= sv[0] < 4.0 and sv[0] / max(sv[1], 1e-9) < 3.0
                         and moved >= self.min_distance and spread >= 8.0)
            if plausible:
                regions.append({"A": A, "src": s_pts, "dst": d_pts, "inliers": count})
            remaining = remaining[~used]
            if not used.any():
                break
        regions.sort(key=lambda r: -r["inliers"])
        best = regions[0]["inliers"] if regions else 0
        accepted = [r for r in regions if r["inliers"] >= self.min_inliers]
        mask_small = np.zeros((h, w), bool)
        described = []
        f32 = g.astype(np.float32)
        for r in accepted:
            region = self._localise(f32, r)
            mask_small |= region
            A, s_pts, d_pts = r["A"], r["src"], r["dst"]
            if np.linalg.det(A[:, :2]) ** 0.5 < 1 if np.linalg.det(A[:, :2]) > 0 else False:
                # Describe the copy as the enlarged side: the source / copy order is not observable.
                A, s_pts, d_pts = cv2.invertAffineTransform(A), d_pts, s_pts
            sv = np.linalg.svd(A[:, :2], compute_uv=False)
            described.append({
                "inliers": int(r["inliers"]),
                "affine": [[round(float(v), 4) for v in row] for row in (A / np.array([[1, 1, factor]]))],
                "rotation_deg": round(float(np.degrees(np.arctan2(A[1, 0] - A[0, 1], A[0, 0] + A[1, 1]))), 1),
                "scale": round(float(np.sqrt(sv[0] * sv[1])), 3),
                "shift": [round(float(v) / factor, 1) for v in np.median(d_pts - s_pts, axis=0)],
                "pixels": int(region.sum() / factor ** 2),
            })
        found = best >= self.min_inliers
        if found:
            moved_px = int(mask_small.sum() / factor ** 2 / 2)
            what = "; ".join(f"{d['inliers']} inliers, rotated {d['rotation_deg']:+.0f} deg, scaled x{d['scale']:.2f}, "
                             f"moved by ({d['shift'][0]:+.0f}, {d['shift'][1]:+.0f})" for d in described)
            message = (f"{len(accepted)} region{'s' if len(accepted) > 1 else ''} copied: about {moved_px:,} px ({what})")
        else:
            message = (f"no copied region: {len(pairs)} keypoint matches, best transform has {best} inliers "
                       f"(needs {self.min_inliers})")
        detail = {**base_detail, "matches": int(len(pairs)), "best_inliers": int(best),
                  "regions": described,
                  "rejected_inliers": [int(r["inliers"]) for r in regions if r["inliers"] < self.min_inliers]}
        return TamperFinding(NAME, self.kind, score_of(best, self.min_inliers), found,
                             resize_mask(mask_small, shape), message, detail)

    def _localise(self, g: np.ndarray, region: dict) -> np.ndarray:
        """Pixels (source and copy) whose neighbourhood correlates with their twin under A, near the matches."""
        h, w = g.shape
        A = region["A"].astype(np.float64)
        Ainv = cv2.invertAffineTransform(A)
        # twin_of_source(x) = g(A x): at a source pixel it shows that pixel's copy
        twin_of_source = cv2.warpAffine(g, A, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                        borderMode=cv2.BORDER_CONSTANT, borderValue=-1000)
        twin_of_copy = cv2.warpAffine(g, Ainv, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=-1000)
        out = np.zeros((h, w), bool)
        for twin, pts in ((twin_of_source, region["src"]), (twin_of_copy, region["dst"])):
            corr, std = _local_correlation(g, twin, self.corr_radius)
            inside = cv2.erode((twin > -500).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            similar = (cv2.GaussianBlur(corr, (0, 0), 2.0) >= self.corr_threshold) & inside & (std >= self.min_std)
            # Only near the matched points: a copy's twin elsewhere must not light up chance agreement.
            near = np.zeros((h, w), np.uint8)
            hull = cv2.convexHull(pts.astype(np.float32)).astype(np.int32)
            cv2.fillConvexPoly(near, hull, 1)
            margin = int(max(12, 0.25 * np.sqrt(max(cv2.contourArea(hull.astype(np.float32)), 1.0))))
            near = cv2.dilate(near, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))) > 0
            part = similar & near
            part = cv2.morphologyEx(part.astype(np.uint8), cv2.MORPH_CLOSE,
                                    cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))) > 0
            part = remove_small(part, 64)
            out |= part
        # Holes (flat patches inside the copy) are part of it.
        filled = out.astype(np.uint8)
        contours, _ = cv2.findContours(filled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
        return filled > 0
