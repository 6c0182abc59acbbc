"""Every evaluation metric against values worked out by hand on tiny inputs."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fakescope.evaluate import metrics as M
from fakescope.evaluate.metrics import MetricInputError, compute_metrics, compute_video_metrics, group_by_video

# The running example. Sorted by score: 0.8 (fake), 0.4 (real), 0.35 (fake), 0.1 (real).
Y = [0, 0, 1, 1]
P = [0.1, 0.4, 0.35, 0.8]


def test_auc_by_pair_counting():
    # fake-real pairs ranked right: (0.35>0.1) yes, (0.35>0.4) no, (0.8>0.1) yes, (0.8>0.4) yes -> 3/4
    assert M.auc(Y, P) == pytest.approx(0.75)
    # a tie counts half a pair: one pair, tied -> 0.5
    assert M.auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)


def test_accuracy_and_balanced_accuracy_at_half():
    # calls (score >= 0.5): 0, 0, 0, 1 vs labels 0, 0, 1, 1 -> 3 right of 4
    assert M.accuracy(Y, P) == pytest.approx(0.75)
    # the threshold is inclusive: 0.5 is called fake, 0.49 real
    assert M.accuracy([1, 0], [0.5, 0.49]) == 1.0
    # labels 0,0,0,1; calls 0,0,1,1: accuracy 3/4; recall(real) 2/3, recall(fake) 1 -> (2/3 + 1)/2 = 5/6
    assert M.accuracy([0, 0, 0, 1], [0.1, 0.2, 0.6, 0.7]) == pytest.approx(0.75)
    assert M.balanced_accuracy([0, 0, 0, 1], [0.1, 0.2, 0.6, 0.7]) == pytest.approx(5 / 6)


def test_eer_exact_crossing():
    # ROC vertices (threshold: FPR, TPR, FNR): inf: 0, 0, 1 | 0.8: 0, .5, .5 | 0.4: .5, .5, .5 | 0.35: .5, 1, 0 | 0.1: 1, 1, 0
    # FPR = FNR = 0.5 exactly at threshold 0.4 -> EER 0.5
    assert M.eer(Y, P) == pytest.approx(0.5)
    assert M.eer([0, 1], [0.2, 0.8]) == 0.0  # separated: FPR = FNR = 0 at threshold 0.8
    assert M.eer([0, 1], [0.8, 0.2]) == 1.0  # inverted: only FPR = FNR = 1 meet


def test_eer_interpolated_on_a_diagonal_segment():
    # reals 0.6, 0.2; fakes 0.6, 0.6, 0.1. ROC: (0, 0) -> threshold 0.6 takes 1 real and 2 fakes -> (1/2, 2/3)
    # FPR - FNR goes from 0 - 1 = -1 to 1/2 - 1/3 = 1/6, so the crossing is t = 1 / (1 + 1/6) = 6/7 along the segment:
    # FPR = 6/7 * 1/2 = 3/7 and FNR = 1 - 6/7 * 2/3 = 3/7 -> EER 3/7
    assert M.eer([0, 0, 1, 1, 1], [0.6, 0.2, 0.6, 0.6, 0.1]) == pytest.approx(3 / 7)
    # one real and one fake tied: ROC (0,0) -> (1,1); FPR = t, FNR = 1 - t meet at t = 1/2
    assert M.eer([0, 1], [0.5, 0.5]) == pytest.approx(0.5)


def test_eer_interpolated_on_a_vertical_segment():
    # reals 0.1, 0.2, 0.9; fake 0.5. ROC: (0,0), (1/3, 0) [0.9], (1/3, 1) [0.5], (2/3, 1), (1, 1)
    # FPR - FNR: -1, 1/3 - 1 = -2/3, 1/3 - 0 = 1/3 -> crossing on the vertical step at FPR 1/3 (FNR 1 - 2/3 = 1/3)
    assert M.eer([0, 0, 0, 1], [0.1, 0.2, 0.9, 0.5]) == pytest.approx(1 / 3)


def test_average_precision_by_hand():
    # ranked: fake (precision 1/1), real, fake (precision 2/3), real -> AP = (1 + 2/3) / 2 = 5/6
    assert M.average_precision(Y, P) == pytest.approx(5 / 6)


def test_log_loss_by_hand_and_clipping():
    # -(ln(1 - 0.1) + ln(1 - 0.4) + ln(0.35) + ln(0.8)) / 4
    # = -(-0.1053605 - 0.5108256 - 1.0498221 - 0.2231436) / 4 = 1.8891518 / 4 = 0.4722880
    assert M.log_loss(Y, P) == pytest.approx(0.4722880, abs=1e-6)
    # fully wrong and certain: each term is -ln(1e-15) = 15 ln 10 = 34.538776
    assert M.log_loss([1, 0], [0.0, 1.0]) == pytest.approx(15 * math.log(10))
    # the optional [0.01, 0.99] clip: each term -ln(0.01) = 4.605170
    assert M.log_loss([1, 0], [0.0, 1.0], clip=0.01) == pytest.approx(-math.log(0.01))
    # right and certain costs (almost) nothing, not NaN
    assert M.log_loss([1, 0], [1.0, 0.0]) == pytest.approx(0.0, abs=1e-12)
    assert compute_metrics([1, 0], [0.0, 1.0], logloss_clip=0.01)["logloss"] == pytest.approx(-math.log(0.01))


def test_precision_recall_f1_of_the_fake_class():
    # calls 0,0,0,1: TP 1 (0.8), FP 0, FN 1 (0.35) -> precision 1, recall 1/2, F1 = 2*1/(2*1 + 0 + 1) = 2/3
    assert M.precision(Y, P) == 1.0
    assert M.recall(Y, P) == 0.5
    assert M.f1(Y, P) == pytest.approx(2 / 3)
    # nothing called fake: precision is 0/0 (None, not a silent 0); recall 0/2 = 0; F1 = 0/(0 + 0 + 2) = 0
    assert M.precision([0, 1, 1], [0.1, 0.2, 0.3]) is None
    assert M.recall([0, 1, 1], [0.1, 0.2, 0.3]) == 0.0
    assert M.f1([0, 1, 1], [0.1, 0.2, 0.3]) == 0.0
    # only reals, none called fake: all three are 0/0
    out = compute_metrics([0, 0], [0.1, 0.2])
    assert out["precision"] is None and out["recall"] is None and out["f1"] is None
    assert {"precision", "recall", "f1"} <= set(out["undefined"])


def test_tpr_at_fpr_interpolation():
    # reals 0.9, 0.2; fakes 0.9, 0.3. ROC: (0, 0), (1/2, 1/2) [the 0.9 tie], (1/2, 1) [0.3], (1, 1)
    y, p = [0, 1, 1, 0], [0.9, 0.9, 0.3, 0.2]
    # on the diagonal segment from (0, 0) to (1/2, 1/2): TPR = FPR
    assert M.tpr_at_fpr(y, p, 0.01) == pytest.approx(0.01)
    assert M.tpr_at_fpr(y, p, 0.05) == pytest.approx(0.05)
    assert M.tpr_at_fpr(y, p, 0.25) == pytest.approx(0.25)
    # exactly on the vertical step at FPR 1/2: its top, TPR 1
    assert M.tpr_at_fpr(y, p, 0.5) == 1.0
    out = compute_metrics(y, p)
    assert out["tpr_at_fpr_1"] == pytest.approx(0.01) and out["tpr_at_fpr_5"] == pytest.approx(0.05)
    # running example: ROC (0,0), (0, 1/2), (1/2, 1/2), ... -> flat at 1/2 between FPR 0 and 1/2
    assert M.tpr_at_fpr(Y, P, 0.01) == pytest.approx(0.5)
    # separated: every fake above every real -> TPR 1 at FPR 0
    assert M.tpr_at_fpr([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 0.01) == 1.0
    with pytest.raises(MetricInputError):
        M.tpr_at_fpr(y, p, 1.5)


def test_expected_calibration_error_two_bins():
    # 15 bins of width 1/15: 0.1 falls in bin 1 [0.067, 0.133), 0.9 in bin 13 [0.867, 0.933).
    # bin 1: mean P(fake) 0.1, fraction fake 1/2 -> |0.1 - 0.5| = 0.4, weight 2/4
    # bin 13: mean P(fake) 0.9, fraction fake 2/2 -> |0.9 - 1.0| = 0.1, weight 2/4
    # ECE = 0.5 * 0.4 + 0.5 * 0.1 = 0.25
    assert M.expected_calibration_error([0, 1, 1, 1], [0.1, 0.1, 0.9, 0.9]) == pytest.approx(0.25)
    # calibrated: one bin with mean 0.5 and half fakes -> 0
    assert M.expected_calibration_error([0, 1], [0.5, 0.5]) == pytest.approx(0.0)
    # 0.0 and 1.0 land in the first and last bins (1.0 is not a 16th bin) -> both exact -> 0
    assert M.expected_calibration_error([0, 1], [0.0, 1.0]) == pytest.approx(0.0)
    # running example: bins 1 {0.1: real}, 5 {0.35: fake}, 6 {0.4: real}, 12 {0.8: fake}
    # (0.1 + 0.65 + 0.4 + 0.2) / 4 = 0.3375
    assert M.expected_calibration_error(Y, P) == pytest.approx(0.3375)


def test_compute_metrics_keys_and_values():
    out = compute_metrics(Y, P)
    assert list(out)[:19] == [
        "auc", "acc", "balanced_acc", "eer", "ap", "logloss", "precision", "recall", "f1",
        "tpr_at_fpr_1", "tpr_at_fpr_5", "ece", "threshold", "false_alarm", "uncertain_share", "acc_decided",
        "n", "n_fake", "n_real",
    ]
    # Y, P: reals 0.1, 0.4 and fakes 0.35, 0.8 at threshold 0.5 without a band
    assert (out["threshold"], out["false_alarm"], out["uncertain_share"], out["acc_decided"]) == (0.5, 0.0, 0.0, 0.75)
    assert set(out) == set(M.METRIC_KEYS) | {"undefined"}
    assert (out["n"], out["n_fake"], out["n_real"]) == (4, 2, 2)
    assert out["auc"] == pytest.approx(0.75) and out["ap"] == pytest.approx(5 / 6) and out["undefined"] == {}
    json.dumps(out, allow_nan=False)


@pytest.mark.parametrize("label", [0, 1])
def test_a_single_class_gives_none_with_a_reason(label):
    out = compute_metrics([label] * 3, [0.2, 0.6, 0.9])
    for key in ("auc", "eer", "ap", "balanced_acc", "tpr_at_fpr_1", "tpr_at_fpr_5"):
        assert out[key] is None, key
        assert "both classes" in out["undefined"][key]
    # still defined with one class
    assert out["acc"] == pytest.approx(2 / 3 if label == 1 else 1 / 3)
    assert out["logloss"] is not None and out["ece"] is not None
    assert M.auc([label] * 3, [0.2, 0.6, 0.9]) is None
    json.dumps(out, allow_nan=False)  # None is null; no NaN sneaks in


def test_empty_input_is_all_none():
    out = compute_metrics([], [])
    assert out["n"] == 0 and all(out[k] is None for k in M.METRIC_KEYS if not k.startswith("n") and k != "threshold")
    assert out["undefined"]["auc"] == "no samples"


@pytest.mark.parametrize("labels, scores", [
    ([0, 1], [0.2, float("nan")]),  # a model emitting NaN is a bug to surface, not a score
    ([0, 2], [0.2, 0.3]),  # labels are 0/1 only
    ([0, 1], [0.2, 1.2]),  # scores are probabilities
    ([0, 1, 1], [0.2, 0.3]),  # lengths differ
])
def test_bad_input_is_an_error(labels, scores):
    with pytest.raises(MetricInputError):
        compute_metrics(labels, scores)


# ----------------------------------------------------------------------------- video level


def test_video_grouping_means_frame_scores():
    videos = ["a", "a", "b", "b", "b", "c"]
    labels = [0, 0, 1, 1, 1, 1]
    scores = [0.2, 0.4, 0.5, 0.7, 0.9, 0.1]
    ids, video_labels, video_scores, counts = group_by_video(labels, scores, videos)
    assert ids == ["a", "b", "c"]
    assert video_labels.tolist() == [0, 1, 1]
    assert video_scores == pytest.approx([0.3, 0.7, 0.1])  # (0.2+0.4)/2, (0.5+0.7+0.9)/3, 0.1
    assert counts.tolist() == [2, 3, 1]
    out = compute_video_metrics(labels, scores, videos)
    # video scores 0.3 (real), 0.7, 0.1 (fakes): pairs 0.7>0.3 yes, 0.1>0.3 no -> AUC 1/2; calls 0,1,0 -> acc 2/3
    assert out["auc"] == pytest.approx(0.5) and out["acc"] == pytest.approx(2 / 3)
    assert (out["n"], out["n_frames"], out["n_fake"], out["n_real"]) == (3, 6, 2, 1)


def test_video_with_mixed_labels_is_an_error():
    with pytest.raises(MetricInputError, match="both real and fake"):
        group_by_video([0, 1], [0.2, 0.8], ["v", "v"])


def test_keys_separate_reused_ids_and_frames_without_id_stand_alone():
    # FF++-style: "900" is both a real video and the fake made from it -> keyed by (method, video)
    labels, scores = [0, 1, 0, 0], [0.2, 0.8, 0.4, 0.6]
    videos = ["900", "900", None, None]
    methods = ["original", "deepfakes", "original", "original"]
    ids, video_labels, video_scores, counts = group_by_video(labels, scores, videos, keys=list(zip(methods, videos)))
    assert ids == [("original", "900"), ("deepfakes", "900"), None, None]
    assert video_labels.tolist() == [0, 1, 0, 0] and counts.tolist() == [1, 1, 1, 1]
    assert video_scores == pytest.approx([0.2, 0.8, 0.4, 0.6])
    # integer ids must not collide with the frames that have no id
    ids, _, _, counts = group_by_video([0, 0, 0], [0.1, 0.2, 0.3], [0, None, 0])
    assert ids == [0, None] and counts.tolist() == [2, 1]


def test_log_loss_agrees_with_scikit_learn_away_from_the_clip():
    from sklearn.metrics import log_loss as sk_log_loss

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 200), rng.uniform(0.01, 0.99, 200)
    assert M.log_loss(y, p) == pytest.approx(sk_log_loss(y, p))
