"""Descriptions from (content, style) labels: coverage, variety, reproducibility, no evaluation leak, mirroring."""

from __future__ import annotations

from temos_blender.data.descriptions import (
    EVAL_CONTENT,
    EVAL_SUBJECTS,
    MIRROR_CONTENT,
    TRAIN_CONTENT,
    describe,
    eval_phrasings,
    mirror_text,
    train_phrasings,
)


def _pairs(bandai_clips):
    return sorted({(c.content, c.style) for c in bandai_clips.values()})


def test_generator_covers_every_content_style_pair_present(bandai_clips):
    for content, style in _pairs(bandai_clips):
        train, ev = describe(content, style, "some_clip")
        assert len(set(train)) == 8 and len(set(ev)) == 3, (content, style)
        assert len(train_phrasings(content, style)) >= 40 and len(eval_phrasings(content, style)) >= 20


def test_no_evaluation_phrasing_is_ever_a_training_phrasing(bandai_clips):
    train_all, eval_all = set(), set()
    for content, style in _pairs(bandai_clips):
        train_all.update(train_phrasings(content, style))
        eval_all.update(eval_phrasings(content, style))
    assert not train_all & eval_all
    # Nor do training texts use the evaluation book's subjects or verb phrases.
    eval_vps = {vp for vps in EVAL_CONTENT.values() for vp in vps}
    for text in train_all:
        low = text.lower()
        assert not any(s in low for s in EVAL_SUBJECTS), text
        assert not any(vp in low for vp in eval_vps), text


def test_descriptions_are_reproducible_and_vary_between_clips():
    a = describe("wave-right-hand", "elderly", "clip_1")
    assert a == describe("wave-right-hand", "elderly", "clip_1")
    assert a != describe("wave-right-hand", "elderly", "clip_2")


def test_styled_descriptions_mention_the_style_and_some_leave_it_out():
    train, _ = describe("walk", "tired", "clip_9")
    styled = [t for t in train if any(w in t.lower() for w in ("tired", "weary", "wearily"))]
    assert 0 < len(styled) < len(train)


def test_descriptions_name_the_side_the_label_names():
    for content in ("wave-right-hand", "raise-up-right-hand", "walk-turn-right"):
        assert all("right" in t and "left" not in t for t in train_phrasings(content, "normal"))
        assert all("right" in t and "left" not in t for t in eval_phrasings(content, "normal"))


def test_mirrored_text_swaps_left_and_right_and_matches_the_mirrored_label():
    assert (
        mirror_text("Someone waves the Left hand, then turns right.")
        == "Someone waves the Right hand, then turns left."
    )
    assert mirror_text("A person spins clockwise.") == "A person spins counterclockwise."
    for content, mirrored in MIRROR_CONTENT.items():
        if content not in TRAIN_CONTENT:  # labels of clips with written texts, mirrored by mirror_text alone
            continue
        assert {mirror_text(t) for t in train_phrasings(content, "happy")} == set(train_phrasings(mirrored, "happy"))


def test_every_training_content_has_evaluation_phrases():
    assert set(TRAIN_CONTENT) == set(EVAL_CONTENT)
