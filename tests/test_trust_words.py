"""The Analyze page's words of trust follow each card's measured figures (views/common/verdicts.py)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("streamlit")

from models.cards import SHIPPED_CARDS_DIR  # noqa: E402
from views.common.trust_words import metrics_sentence
from views.common.verdicts import reliability  # noqa: E402

OUT_OF_SOURCE = {
    "video_auc": 0.86,
    "video_auc_ci95": [0.80, 0.91],
    "verdict_accuracy": 0.862,
    "uncertain_share": 0.25,
    "ece": 0.041,
    "n_real": 70,
    "n_fake": 80,
    "accuracy": 0.8,
    "protocol": "leave one source out",
    "per_source": {
        "ffpp": {"auc": 0.91, "auc_ci95": [0.8, 0.97], "n_real": 10, "n_fake": 20},
        "celebdf": {"auc": 0.712, "auc_ci95": [0.5, 0.9], "n_real": 5, "n_fake": 6},
        "real_only": {"auc": None, "auc_ci95": None, "n_real": 4, "n_fake": 0},
    },
    "five_fold": {"video_auc": 0.93, "per_fold": [0.9, 0.95]},
}


def test_reliability_states_the_verdicts_record_on_unseen_sources():
    words = reliability(OUT_OF_SOURCE)
    assert words.startswith("fairly reliable, but it makes mistakes:")
    assert (
        "when it gives a verdict it was right 86% of the time on 150 test clips from video sources "
        "it never saw; it said uncertain on 25% of them."
    ) in words


def test_reliability_claims_no_more_than_the_weakest_figure():
    strong = {"verdict_accuracy": 0.95, "uncertain_share": 0.2}
    assert reliability(strong).startswith("reliable on clips like")
    assert "video sources" not in reliability(strong)  # no per-source figures: no claim about sources
    assert "weak hint" in reliability({**strong, "video_auc": 0.66})  # the AUC caps the words
    assert reliability({**strong, "uncertain_share": 0.8}).startswith("fairly reliable")  # rarely commits
    assert "weak hint" in reliability({"verdict_accuracy": 0.7, "uncertain_share": 0.3, "video_auc": 0.95})
    assert "barely better than guessing" in reliability({"verdict_accuracy": 0.55, "uncertain_share": 0.1})
    never = reliability({"verdict_accuracy": None, "uncertain_share": 1.0, "n_real": 3, "n_fake": 4})
    assert "uncertain on every one of the 7 test clips" in never and "no evidence" in never


def test_reliability_falls_back_to_the_auc_words():
    assert "weak hint" in reliability({"video_auc": 0.689, "uncertain_share": 0.3})  # half the record
    assert "it scored 0.69 in testing" in reliability({"video_auc": 0.689})
    assert reliability({"protocol": "none"}) is None


def test_metrics_sentence_summarises_nested_tables():
    words = metrics_sentence(OUT_OF_SOURCE)
    assert words.startswith(
        "video AUC 0.86 on 70 real and 80 fake clips from sources it never saw, 95% sure it lies between 0.80 and 0.91"
    )
    assert "its FAKE and REAL verdicts were right 86% of the time, and it said UNCERTAIN on 25% of clips" in words
    assert "calibration error 0.041" in words
    assert "weakest of 2 sources: celebdf (AUC 0.71), best: ffpp (AUC 0.91)" in words
    assert "5-fold video AUC 0.93" in words and "accuracy 0.800" in words
    for raw in ("{", "[", "per_fold", "auc_ci95", "real_only", "per source", "five fold", "protocol"):
        assert raw not in words


def test_metrics_sentence_with_odd_nested_values():
    one = metrics_sentence(
        {"video_auc": 0.7, "per_source": {"dfdc": {"auc": 0.7}}, "five_fold": {"x": 1}, "protocol": "p"}
    )
    assert "scored on one source, dfdc (AUC 0.70)" in one and "5-fold" not in one
    empty = metrics_sentence({"per_source": {"a": {"auc": None}}, "five_fold": [], "protocol": "p"})
    assert empty == "not measured yet."


@pytest.mark.parametrize("path", sorted(SHIPPED_CARDS_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_shipped_cards_speak_from_their_measured_figures(path):
    metrics = json.loads(path.read_text())["metrics"]
    words = reliability(metrics)
    if "verdict_accuracy" in metrics:  # measured with its band: the verdicts' own record
        assert f"right {round(100 * metrics['verdict_accuracy'])}% of the time" in words
        assert f"uncertain on {round(100 * metrics['uncertain_share'])}% of them" in words
        assert "from video sources it never saw" in words  # every shipped card is measured so
    else:
        assert words.endswith("where 1.00 is perfect and 0.50 a coin toss).")
    # No shipped detector is called better than "a weak hint": none scored 0.75 out of source.
    assert words.startswith(("barely better than guessing", "only a weak hint"))
    assert metrics_sentence(metrics).startswith(f"video AUC {metrics['video_auc']:.2f} on ")
