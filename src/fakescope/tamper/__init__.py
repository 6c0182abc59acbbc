"""Training-free image tampering localization: copy-move (block and keypoint matching) and splicing
(JPEG ghosts, noise-level inconsistency). Only NumPy and OpenCV, so it runs in the base install.

    from fakescope.tamper import TAMPER_METHODS, analyse, TamperFinding
    findings = analyse(image_rgb)              # every method; or methods=["jpeg_ghost", ...]
"""
from .base import FOUND_AT, TAMPER_METHODS, TamperFinding, analyse

__all__ = ["FOUND_AT", "TAMPER_METHODS", "TamperFinding", "analyse"]
