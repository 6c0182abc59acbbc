"""Aggregation policies against hand-computed values; cropping and track linking geometry."""
from __future__ import annotations

import numpy as np
import pytest

from fakescope.scan.aggregate import AGGREGATORS
from fakescope.scan.faces import Face, crop_face, iou, link_tracks
from fakescope.registry import UnknownNameError


def test_max_track_mean_takes_the_most_suspicious_person():
    tracks = [[0.1, 0.2, 0.3], [0.9, 0.7]]
    assert AGGREGATORS.get("max_track_mean")(tracks) == pytest.approx(0.8)


def test_mean_of_all_faces():
    assert AGGREGATORS.get("mean")([[0.1, 0.2, 0.3], [0.9, 0.7]]) == pytest.approx(2.2 / 5)


def test_fraction_above_half():
    assert AGGREGATORS.get("fraction_above")([[0.1, 0.6], [0.9, 0.4, 0.5]]) == pytest.approx(2 / 5)


def test_confident_strategy_branches():
    confident = AGGREGATORS.get("confident")
    # 12 of 20 faces above 0.8 (> 11 and > 20 // 2.5 = 8): mean of those 12
    many_fake = [[0.9] * 12 + [0.1] * 8]
    assert confident(many_fake) == pytest.approx(0.9)
    # 19 of 20 below 0.2 (> 90%): mean of those
    mostly_real = [[0.1] * 19 + [0.95]]
    assert confident(mostly_real) == pytest.approx(0.1)
    # neither: plain mean
    mixed = [[0.9] * 5 + [0.5] * 5]
    assert confident(mixed) == pytest.approx(0.7)


def test_unknown_policy_suggests_a_name():
    with pytest.raises(UnknownNameError, match="Did you mean 'confident'"):
        AGGREGATORS.get("confidnt")


def test_crop_is_square_with_margin_and_padded_at_edges():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, :100] = 255  # left half white
    # a 40x40 box at the left edge: the 1.5x crop (60 px) leaves the frame and is edge-padded
    crop = crop_face(image, (0, 30, 40, 70), margin=1.5, size=60)
    assert crop.shape == (60, 60, 3)
    assert crop.min() == 255  # padding repeats the white edge, no black bars
    centred = crop_face(image, (80, 30, 120, 70), margin=1.0, size=40)
    assert centred[:, :18].min() == 255 and centred[:, 22:].max() == 0


def test_tracks_follow_two_moving_faces_and_a_late_newcomer():
    frames = []
    for t in range(10):
        faces = [Face((10 + 2 * t, 10, 60 + 2 * t, 60), 0.99), Face((200 - 2 * t, 10, 250 - 2 * t, 60), 0.99)]
        if t >= 8:
            faces.append(Face((100, 150, 150, 200), 0.99))
        frames.append(faces)
    tracks = link_tracks(frames)
    assert [len(t.links) for t in tracks] == [10, 10, 2]
    for track in tracks[:2]:
        assert len({link.face_index for link in track.links}) == 1  # never swaps people


def test_iou():
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
