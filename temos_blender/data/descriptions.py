"""English descriptions for label-only clips: (content, style) → several paraphrases, seeded.

Two disjoint phrase books. The *training* book has the subjects, verbs, style words and sentence patterns the model
learns from; the *evaluation* book uses other subjects ("an individual", "the performer" …), other verbs and
synonyms, and other sentence patterns, so an evaluation text never equals a training text and evaluation measures
language generalisation rather than template matching.

Left and right are the actor's own. The meanings of the undocumented Bandai labels were read off the clips (forward
kinematics after transfer to SMPL, normal and other styles): ``guide`` — the right arm sweeps out to show the way;
``call`` — hands cupped at the mouth, then an arm waves someone over; ``respond`` — the left arm goes straight up
(answering "here!"); ``bye`` — the right hand raised beside the head, waving; ``byebye`` — both hands up, waving
goodbye; ``giant`` (a style) — lower pelvis and head (0.83 m / 1.42 m vs 0.88 m / 1.50 m), heavy stooped steps.
``walk-left`` / ``walk-right`` (dataset 1) walk forward along a line 20–30° to that side without turning, unlike
dataset 2's ``walk-turn-left`` / ``-right``, which turn about 90°.
"""

from __future__ import annotations

import random
import re
import zlib

# ---------------------------------------------------------------------------------------------- training book
TRAIN_SUBJECTS = ("a person", "someone", "a man", "a woman", "the character")
_POSSESSIVE = {"a man": "his", "a woman": "her"}  # everyone else: "their"

TRAIN_CONTENT: dict[str, tuple[str, ...]] = {
    "walk": ("walks forward", "walks straight ahead", "walks", "takes a few steps forward"),
    "walk-back": ("walks backward", "walks backwards", "steps backward several times", "moves backward step by step"),
    "walk-left": ("walks forward diagonally to the left", "walks forward and to the left", "walks toward the front left"),
    "walk-right": ("walks forward diagonally to the right", "walks forward and to the right", "walks toward the front right"),
    "walk-turn-left": ("walks forward and turns left", "walks and makes a left turn", "turns to the left while walking",
                       "walks in a curve to the left"),
    "walk-turn-right": ("walks forward and turns right", "walks and makes a right turn", "turns to the right while walking",
                        "walks in a curve to the right"),
    "run": ("runs forward", "runs straight ahead", "runs"),
    "dash": ("sprints forward", "dashes forward", "runs forward very fast", "sprints"),
    "bow": ("bows", "bows politely", "bends forward at the waist to bow", "takes a bow"),
    "bye": ("waves goodbye with {poss} right hand", "raises {poss} right hand beside {poss} head and waves goodbye",
            "says bye with a wave of the right hand"),
    "byebye": ("waves goodbye with both hands", "raises both hands and waves bye-bye",
               "waves both arms to say goodbye"),
    "guide": ("gestures with {poss} right arm to show the way", "points the way with {poss} right hand",
              "guides someone with a sweep of the right arm"),
    "call": ("cups {poss} hands around {poss} mouth and calls someone over", "calls out to someone and waves them over",
             "shouts to someone and beckons them to come"),
    "respond": ("raises {poss} left arm straight up to answer", "puts {poss} left hand up as if answering here",
                "responds by raising the left hand high"),
    "punch": ("throws punches", "punches the air", "punches with both fists"),
    "kick": ("kicks with {poss} right leg", "kicks forward with the right foot", "does a kick with the right leg"),
    "slash": ("slashes with a sword held in both hands", "swings an imaginary sword with both hands",
              "slashes with both hands as if holding a blade"),
    "dance-short": ("dances", "dances energetically", "does a dance"),
    "dance-long": ("dances", "dances energetically", "does a dance"),
    "raise-up-both-hands": ("raises both hands", "lifts both arms up", "puts both hands up in the air"),
    "raise-up-left-hand": ("raises {poss} left hand", "lifts {poss} left arm up", "puts {poss} left hand up"),
    "raise-up-right-hand": ("raises {poss} right hand", "lifts {poss} right arm up", "puts {poss} right hand up"),
    "wave-both-hands": ("waves both hands", "waves with both hands", "waves both arms above {poss} head"),
    "wave-left-hand": ("waves {poss} left hand", "waves with the left hand", "waves {poss} left arm"),
    "wave-right-hand": ("waves {poss} right hand", "waves with the right hand", "waves {poss} right arm"),
    "jump": ("jumps", "jumps up", "jumps in place", "does a jump"),
    "jump-forward": ("jumps forward", "does a long jump forward", "leaps forward with both feet"),
    "jump-balance": ("jumps and keeps {poss} balance on landing", "jumps, then balances", "jumps and lands steadily"),
    "walk-uneven": ("walks over uneven ground", "walks carefully over rough terrain", "walks on an uneven surface"),
    "reach-up": ("jumps up to grab something above", "reaches up high on tiptoe and jumps to grab something",
                 "stretches up on {poss} toes to reach for something"),
}  # fmt: skip

CMU_LABEL_CONTENT = {
    "walk": "walk", "run": "run", "run/jog": "run", "jump": "jump", "forward jump": "jump-forward",
    "jump, balance": "jump-balance", "walk on uneven terrain": "walk-uneven",
    "jump up to grab, reach for, tiptoe": "reach-up",
}  # fmt: skip
"""CMU's short trial descriptions → content keys of the phrase books."""

# style → (adjectives for the subject, adverbs, trailing phrases)
TRAIN_STYLE: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "unstyled": ((), (), ()),
    "normal": ((), ("normally", "casually"), ("in a normal way", "in an ordinary way")),
    "happy": (("happy", "cheerful"), ("happily", "cheerfully"), ("in a happy mood", "happy")),
    "sad": (("sad", "gloomy"), ("sadly",), ("looking sad", "sad")),
    "angry": (("angry", "furious"), ("angrily",), ("in an angry way", "angry")),
    "proud": (("proud",), ("proudly",), ("with pride", "proud")),
    "not-confident": (("timid", "insecure"), ("timidly", "hesitantly"), ("without confidence", "unsure of themselves")),
    "masculinity": (("masculine",), ("in a manly way",), ("in a masculine manner", "masculine")),
    "masculine": (("masculine",), ("in a manly way",), ("in a masculine manner", "masculine")),
    "feminine": (("feminine",), ("gracefully",), ("in a feminine manner", "feminine")),
    "childish": (("childish",), ("childishly",), ("like a child", "childish")),
    "youthful": (("young", "youthful"), ("energetically",), ("like a young person", "youthful")),
    "old": (("old", "elderly"), ("slowly",), ("like an old person", "old")),
    "elderly": (("elderly", "old"), ("slowly",), ("like an elderly person", "elderly")),
    "tired": (("tired", "weary"), ("wearily", "tiredly"), ("looking tired", "tired")),
    "exhausted": (("exhausted", "tired"), ("wearily",), ("completely exhausted", "exhausted")),
    "active": (("energetic", "lively"), ("energetically", "actively"), ("full of energy", "energetic")),
    "musical": ((), ("rhythmically",), ("as if in a musical", "like a musical performer")),
    "giant": (("giant", "huge"), ("heavily",), ("like a giant", "with heavy lumbering movements")),
    "chimpira": (("thuggish", "swaggering"), ("with a swagger",), ("like a thug", "like a street punk")),
}  # fmt: skip

# ---------------------------------------------------------------------------------------------- evaluation book
EVAL_SUBJECTS = ("an individual", "the performer", "somebody", "a human", "this figure")

EVAL_CONTENT: dict[str, tuple[str, ...]] = {
    "walk": ("strolls ahead", "moves forward on foot"),
    "walk-back": ("retreats backwards on foot", "paces in reverse"),
    "walk-left": ("heads off at an angle toward the left", "strolls ahead while drifting leftward"),
    "walk-right": ("heads off at an angle toward the right", "strolls ahead while drifting rightward"),
    "walk-turn-left": ("strolls and changes direction leftward", "heads forward, then veers leftward"),
    "walk-turn-right": ("strolls and changes direction rightward", "heads forward, then veers rightward"),
    "run": ("jogs quickly ahead", "races ahead"),
    "dash": ("bolts ahead at full speed", "races off at top speed"),
    "bow": ("bends over in a respectful greeting", "performs a courteous bow"),
    "bye": ("bids farewell by waving the right palm", "says farewell with one raised right palm"),
    "byebye": ("bids farewell waving both palms", "says farewell with both palms raised"),
    "guide": ("directs the way using the right arm", "indicates a direction with an outstretched right arm"),
    "call": ("yells toward a friend and beckons", "hollers at a friend to come closer"),
    "respond": ("answers a roll call by lifting the left arm", "signals presence with the left arm held high"),
    "punch": ("jabs with the fists", "boxes at nothing"),
    "kick": ("strikes out with the right foot", "delivers a right-footed kick"),
    "slash": ("cuts through the air with a two-handed blade", "hacks with an invisible two-handed sword"),
    "dance-short": ("grooves to a beat", "performs a lively dance routine"),
    "dance-long": ("grooves to a beat", "performs a lively dance routine"),
    "raise-up-both-hands": ("lifts both palms overhead", "reaches up high with both arms"),
    "raise-up-left-hand": ("lifts the left palm overhead", "reaches up high with the left arm"),
    "raise-up-right-hand": ("lifts the right palm overhead", "reaches up high with the right arm"),
    "wave-both-hands": ("flaps both palms in greeting", "greets with both arms swaying overhead"),
    "wave-left-hand": ("flaps the left palm in greeting", "greets by swaying the left arm"),
    "wave-right-hand": ("flaps the right palm in greeting", "greets by swaying the right arm"),
    "jump": ("hops up off the floor", "springs into the air"),
    "jump-forward": ("springs ahead off both feet", "bounds a long way ahead"),
    "jump-balance": ("springs up and steadies on landing", "hops and regains footing"),
    "walk-uneven": ("steps across bumpy ground", "picks a way over rough footing"),
    "reach-up": ("springs up to catch an object overhead", "stretches on tiptoes toward something overhead"),
}  # fmt: skip

EVAL_STYLE: dict[str, tuple[str, ...]] = {
    "unstyled": (),
    "normal": ("in a neutral manner", "in a plain manner"),
    "happy": ("with a joyful attitude", "in high spirits"),
    "sad": ("with a sorrowful attitude", "in low spirits"),
    "angry": ("with an irritated attitude", "in a rage"),
    "proud": ("with a haughty attitude", "full of self-importance"),
    "not-confident": ("with an insecure attitude", "lacking self-assurance"),
    "masculinity": ("with a macho attitude", "in a macho manner"),
    "masculine": ("with a macho attitude", "in a macho manner"),
    "feminine": ("with a ladylike attitude", "in a ladylike manner"),
    "childish": ("with an immature attitude", "like a little kid"),
    "youthful": ("with a juvenile bounce", "like a teenager"),
    "old": ("with an aged, frail attitude", "like a grandparent"),
    "elderly": ("with an aged, frail attitude", "like a grandparent"),
    "tired": ("with a drained attitude", "out of energy"),
    "exhausted": ("with a drained attitude", "out of energy"),
    "active": ("with a vigorous attitude", "bursting with vitality"),
    "musical": ("with a theatrical attitude", "like on a stage show"),
    "giant": ("with a colossal, ponderous attitude", "like an ogre"),
    "chimpira": ("with a gangster attitude", "like a hoodlum"),
}  # fmt: skip

TRAIN_PATTERNS = ("plain", "adjective", "adverb", "tail", "lead")
EVAL_PATTERNS = ("eval_plain", "eval_manner", "eval_progressive")

_AN = re.compile(r"\ba ([aeiou])")
_SWAP = {"left": "right", "right": "left", "leftward": "rightward", "rightward": "leftward", "leftwards": "rightwards",
         "rightwards": "leftwards", "clockwise": "counterclockwise", "counterclockwise": "clockwise",
         "counter-clockwise": "clockwise", "anticlockwise": "clockwise"}  # fmt: skip
_SWAP_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _SWAP), key=len, reverse=True)) + r")\b", re.IGNORECASE)

MIRROR_CONTENT = {
    "walk-left": "walk-right", "walk-right": "walk-left", "walk-turn-left": "walk-turn-right",
    "walk-turn-right": "walk-turn-left", "raise-up-left-hand": "raise-up-right-hand",
    "raise-up-right-hand": "raise-up-left-hand", "wave-left-hand": "wave-right-hand", "wave-right-hand": "wave-left-hand",
    "run-turning-left": "run-turning-right", "run-turning-right": "run-turning-left",
}  # fmt: skip
"""Content labels that name a side; mirroring a clip swaps them."""


def mirror_text(text: str) -> str:
    """Swap left ↔ right (and clockwise ↔ counterclockwise) in a description, keeping capitals."""

    def swap(m: re.Match) -> str:
        word = m.group(0)
        out = _SWAP[word.lower()]
        return out.capitalize() if word[0].isupper() else out

    return _SWAP_RE.sub(swap, text)


_LEADING_SUBJECT = re.compile(r"^(a person|a human|someone|person|a man|a woman|the person)\b", re.IGNORECASE)


def paraphrase_subject(text: str, subjects: tuple[str, ...] = TRAIN_SUBJECTS) -> list[str]:
    """Variants of a written description with other subjects ("a person jumps." → "someone jumps." …), sorted.

    Texts that refer back to the subject with "their" keep gender-neutral subjects only. A text that does not start
    with a known subject is returned alone.
    """
    m = _LEADING_SUBJECT.match(text.strip())
    if not m:
        return [text.strip()]
    rest = text.strip()[m.end() :]
    neutral = re.search(r"\b(their|them|themselves)\b", rest, re.IGNORECASE)
    out = set()
    for subject in subjects:
        if neutral and subject in _POSSESSIVE:
            continue
        out.add(_tidy(subject + rest.rstrip(".")))
    return sorted(out)


def _tidy(text: str) -> str:
    text = _AN.sub(r"an \1", " ".join(text.split()))
    return text[0].upper() + text[1:] + "."


def _fill(vp: str, subject: str) -> str:
    return vp.format(poss=_POSSESSIVE.get(subject, "their"))


def _subjects(style: str, subjects: tuple[str, ...]) -> tuple[str, ...]:
    if style in ("masculine", "masculinity"):
        return tuple(s for s in subjects if s != "a woman")
    if style == "feminine":
        return tuple(s for s in subjects if s != "a man")
    return subjects


def _with_adjective(subject: str, adjective: str) -> str:
    if subject == "someone":
        subject = "a person"
    article, _, noun = subject.partition(" ")
    return f"{article} {adjective} {noun}"


def train_phrasings(content: str, style: str) -> list[str]:
    """Every training description of a (content, style) pair, sorted (deterministic)."""
    if content not in TRAIN_CONTENT:
        raise KeyError(f"no phrases for content {content!r}; add it to TRAIN_CONTENT and EVAL_CONTENT")
    if style not in TRAIN_STYLE:
        raise KeyError(f"no phrases for style {style!r}; add it to TRAIN_STYLE and EVAL_STYLE")
    adjectives, adverbs, tails = TRAIN_STYLE[style]
    out = set()
    for subject in _subjects(style, TRAIN_SUBJECTS):
        for vp in TRAIN_CONTENT[content]:
            vp = _fill(vp, subject)
            out.add(_tidy(f"{subject} {vp}"))
            for adj in adjectives:
                out.add(_tidy(f"{_with_adjective(subject, adj)} {vp}"))
            for adv in adverbs:
                out.add(_tidy(f"{subject} {vp} {adv}"))
                if " " not in adv:
                    out.add(_tidy(f"{adv}, {subject} {vp}"))
            for tail in tails:
                out.add(_tidy(f"{subject} {vp}, {tail}"))
    return sorted(out)


def eval_phrasings(content: str, style: str) -> list[str]:
    """Every evaluation-only description of a (content, style) pair, sorted."""
    if content not in EVAL_CONTENT or style not in EVAL_STYLE:
        raise KeyError(f"no evaluation phrases for ({content!r}, {style!r})")
    out = set()
    for subject in EVAL_SUBJECTS:
        for vp in EVAL_CONTENT[content]:
            out.add(_tidy(f"{subject} {vp}"))
            for manner in EVAL_STYLE[style]:
                out.add(_tidy(f"{subject} {vp} {manner}"))
                out.add(_tidy(f"{manner}, {subject} {vp}"))
    return sorted(out)


def _rng(key: str, seed: int) -> random.Random:
    return random.Random(zlib.crc32(f"{seed}:{key}".encode()))


def describe(content: str, style: str, key: str, n_train: int = 8, n_eval: int = 3, seed: int = 0) -> tuple[list, list]:
    """(training texts, evaluation texts) for one clip; ``key`` (the clip id) and ``seed`` make it reproducible.

    When the style is not ``normal``, a quarter of the training texts (rounded down) leave the style out, so the model
    learns both the plain action and its styled variants.
    """
    rng = _rng(key, seed)
    pool = train_phrasings(content, style)
    plain = set(train_phrasings(content, "normal")) if style != "normal" else set()
    styled = [t for t in pool if t not in plain]
    plain_l = sorted(plain & set(pool)) or pool
    if style == "normal" or not styled:
        train = rng.sample(pool, min(n_train, len(pool)))
    else:
        k_plain = n_train // 4
        train = rng.sample(plain_l, min(k_plain, len(plain_l))) + rng.sample(
            styled, min(n_train - k_plain, len(styled))
        )
    ev_pool = eval_phrasings(content, style)
    ev = rng.sample(ev_pool, min(n_eval, len(ev_pool)))
    return train, ev
