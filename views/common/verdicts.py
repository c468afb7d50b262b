"""The verdict part of the Analyze page: the one-line summary and one card per model.

The words are written for someone who has never heard of MesoNet: what the detector thinks, how
sure it is, and what to do with a disagreement. The text functions are plain Python so they can be
tested without a browser; the ``render_*`` functions draw them.
"""

from __future__ import annotations

import html
import logging

import streamlit as st

import models
from core.engine.report_queries import short_names
from core.errors import DFIError
from core.types import ClipReport, ModelResult, Verdict
from views.common.trust_words import metrics_sentence, percent, reliability
from views.figures.timeline import VERDICT_COLOURS

log = logging.getLogger(__name__)

VERDICT_WORDS = {
    Verdict.FAKE: ("FAKE", "Likely manipulated"),
    Verdict.REAL: ("REAL", "Looks authentic"),
    Verdict.UNCERTAIN: ("UNCERTAIN", "Can't tell either way"),
    Verdict.NO_FACE: ("NO FACE", "No face found to judge"),
    Verdict.UNAVAILABLE: ("UNAVAILABLE", "Not set up on this server yet"),
}
_JUDGED = (Verdict.FAKE, Verdict.REAL, Verdict.UNCERTAIN)


def summary_sentence(report: ClipReport) -> tuple[str, Verdict]:
    """One plain sentence for the whole clip, and the verdict whose colour it is shown in."""
    if report.status == "no_faces":
        return (
            "No face was found in this clip, so there is nothing to judge. Try a clip where "
            "a face is clearly visible, facing the camera and well lit.",
            Verdict.NO_FACE,
        )
    judged = [m.verdict for m in report.models if m.verdict in _JUDGED]
    if not judged:
        return ("No detector could run on this clip — see the note on each detector below.", Verdict.UNAVAILABLE)
    if len(judged) == 1:
        only = next(m for m in report.models if m.verdict in _JUDGED)
        who = f"The only detector that could run ({short_names(report.models)[only.id]}) thinks"
    else:
        who = "Both detectors think" if len(judged) == 2 else f"All {len(judged)} detectors think"
    if all(v is Verdict.FAKE for v in judged):
        return f"{who} this face was manipulated — a likely deepfake.", Verdict.FAKE
    if all(v is Verdict.REAL for v in judged):
        return f"{who} this face is real.", Verdict.REAL
    if Verdict.FAKE in judged and Verdict.REAL in judged:
        return "The detectors disagree — treat this result with caution.", Verdict.UNCERTAIN
    if all(v is Verdict.UNCERTAIN for v in judged):
        subject = "The only detector that could run can't" if len(judged) == 1 else "The detectors can't"
        return (f"{subject} tell whether this face is real or fake — treat it with caution.", Verdict.UNCERTAIN)
    leaning = "fake" if Verdict.FAKE in judged else "real"
    return (
        f"One detector leans towards {leaning}, another is unsure — treat this result with caution.",
        Verdict.UNCERTAIN,
    )


def disagreement_sentence(report: ClipReport) -> str | None:
    """A sentence naming who says what when one model says FAKE and another REAL, else None."""
    judged = [m for m in report.models if m.verdict in (Verdict.FAKE, Verdict.REAL)]
    if {m.verdict for m in judged} != {Verdict.FAKE, Verdict.REAL}:
        return None
    names = short_names(report.models)
    parts = [f"{names[m.id]} says {m.verdict.value.lower()} ({percent(m.p_fake)} chance of fake)" for m in judged]
    return (
        "The detectors disagree: " + ", ".join(parts) + ". They look at different clues, "
        "so when they disagree neither should be trusted on its own."
    )


def usage_line(result: ModelResult, report: ClipReport) -> str:
    """How much of the clip the model used: faces, frames and people."""
    frames = len({s.frame_index for s in result.frames})
    people = len({s.track_id for s in result.frames})
    sampled = len(report.sampling.frame_indices)
    who = "1 person" if people == 1 else f"{people} people"
    return f"Looked at {len(result.frames)} faces in {frames} of {sampled} sampled frames ({who})."


def render_summary(report: ClipReport) -> None:
    """The coloured one-line summary at the top of the results."""
    text, verdict = summary_sentence(report)
    if report.status == "no_faces":
        # Not a verdict but something the user can fix: a warning with what to do next.
        st.warning(text, icon=":material/face:")
        return
    colour = VERDICT_COLOURS[verdict]
    st.html(
        f'<div class="dfi-summary" style="border-left:6px solid {colour};background:{colour}14;'
        f'padding:0.7rem 1rem;border-radius:0.4rem;font-size:1.15rem;font-weight:600">'
        f"{html.escape(text)}</div>"
    )


def render_cards(report: ClipReport) -> None:
    """One verdict card per model, side by side, then a sentence when they disagree."""
    names = short_names(report.models)
    # The detectors that judged the clip come first; one that could not run sits at the end.
    ordered = sorted(report.models, key=lambda m: m.verdict is Verdict.UNAVAILABLE)
    columns = st.columns(len(ordered), gap="medium")
    for i, (column, result) in enumerate(zip(columns, ordered)):
        with column, st.container(border=True, key=f"verdict_card_{i}"):
            _render_card(result, names[result.id], report)
    sentence = disagreement_sentence(report)
    if sentence:
        st.warning(sentence, icon=":material/compare_arrows:")


def _render_card(result: ModelResult, short_name: str, report: ClipReport) -> None:
    word, plain = VERDICT_WORDS[result.verdict]
    colour = VERDICT_COLOURS[result.verdict]
    # A detector that could not run is a fact about this installation, not about the clip: it
    # gets a quieter headline than a verdict.
    size = "1.4rem" if result.verdict is Verdict.UNAVAILABLE else "2rem"
    score = f"{percent(result.p_fake)} chance the face is fake" if result.p_fake is not None else "no score given"
    st.html(
        f'<div class="dfi-verdict" data-model="{html.escape(result.id)}" '
        f'data-verdict="{result.verdict.value}">'
        f'<div style="color:#4b5563;font-size:0.9rem">{html.escape(short_name)} · '
        f"{html.escape(result.display_name)}</div>"
        f'<div style="color:{colour};font-size:{size};font-weight:800;letter-spacing:0.05em">{word}</div>'
        f'<div style="font-weight:600">{plain}</div>'
        f'<div style="font-size:1.1rem;margin-top:0.3rem">{score}</div></div>'
    )
    card = _card_or_none(result.id)
    if result.verdict in _JUDGED:
        trust = reliability(card.metrics if card else {})
        if trust:
            st.markdown(f"**How much to trust it:** {trust}")
        lower, upper = result.band
        st.caption(
            f"Decision line {result.threshold:.0%}: it says FAKE from {upper:.0%}, REAL up to "
            f"{lower:.0%}, and UNCERTAIN in between. {usage_line(result, report)}"
        )
    elif result.verdict is Verdict.UNAVAILABLE:
        others_judged = any(m.p_fake is not None for m in report.models if m.id != result.id)
        st.markdown(
            "It could not run on this server, so it gives no opinion"
            + ("; the verdicts of the other detectors still stand." if others_judged else ".")
        )
        st.caption(f"Technical detail: {result.message or 'no reason was given'}")
    else:
        st.caption("No face was found in the sampled frames, so it has nothing to judge.")
    if card is not None:
        _render_model_card(card)


def _card_or_none(card_id: str):
    try:
        return models.get_card(card_id)
    except DFIError as err:  # a card removed since the analysis: show the verdict without it
        log.warning("card %s: %s", card_id, err.message)
        return None


def _render_model_card(card) -> None:
    """The model card in an expander: what it is, what it learnt from, how well it did."""
    with st.expander("About this detector"):
        st.markdown(card.description)
        st.markdown(f"**Trained on:** {card.trained_on}")
        st.markdown("**How well it did:** " + metrics_sentence(card.metrics or {}))
        if (card.metrics or {}).get("protocol"):
            st.caption(f"Measured as: {card.metrics['protocol']}")
        st.caption(
            f"Card `{card.id}` · input {card.input_size}px · weights licence "
            f"{card.weights.license} · created {card.created}"
        )
