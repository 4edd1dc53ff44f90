"""An offline corpus of short children's stories in the style of TinyStories.

TinyStories (Eldan & Li, 2023) are short stories written by GPT-3.5/4 with the vocabulary of a
3–4 year old. The book must build without downloads, so :func:`generate_stories` writes
stories of the same flavour from a small probabilistic grammar: a cast (a hero with a name, a
kind and a trait; a friend; a grown-up), a place, a favourite object, and one of several plot
structures (a lost object, sharing, a fear overcome, helping an animal, a discovery, a
broken rule, making a gift, a rainy day), each told as a sequence of beats. Every beat has
several sentence forms (narration, causal "because/so" sentences, dialogue in quotes), and
every slot has many fillers, so the text is varied enough that a small model's loss keeps
falling for hundreds of gradient steps, yet regular enough to be learnable.

Randomness comes from one ``random.Random(seed)`` (never the global state): the same seed
gives the same text, and ``generate_stories(n, s)`` is a prefix of ``generate_stories(m, s)``
for ``n <= m``.
"""

from __future__ import annotations

import random
from typing import Iterator

from learnlaw.core import checks

__all__ = ["generate_stories", "iter_stories"]


def _words(s: str) -> tuple[str, ...]:
    """``"a b|c d"`` -> ``("a b", "c d")``: word lists written compactly."""
    return tuple(w.strip() for w in s.split("|"))


# fmt: off
GIRLS = _words("Lily|Mia|Sue|Anna|Emma|Lucy|Sara|Zoe|Ella|Amy|Kate|Rose|Jane|Maya|Nora|Ruby|Ivy|"
               "Tina|Molly|Lena|Daisy|Kim")
BOYS = _words("Tom|Ben|Max|Sam|Tim|Jack|Leo|Finn|Jake|Joe|Bob|Dan|Luke|Noah|Owen|Eli|Kai|Theo|"
              "Alex|Billy|Timmy|Ned")
PETS = _words("Spot|Fluffy|Buddy|Whiskers|Coco|Pip|Bella|Rusty|Mittens|Hoppy|Benny|Sunny|Pepper|"
              "Ziggy|Lulu|Bubbles|Snowy|Patch")
CHILD_KINDS = {"f": ("little girl", "girl"), "m": ("little boy", "boy")}
ANIMALS = _words("dog|cat|bunny|bird|bear|fox|duck|frog|mouse|squirrel|puppy|kitten|owl|turtle|"
                 "pig|lamb")
TRAITS = _words("kind|brave|curious|happy|shy|funny|friendly|smart|silly|playful|gentle|busy|"
                "small|clever|cheerful|sleepy")
PLACES = _words("park|forest|garden|beach|farm|school|river|hill|lake|zoo|market|yard|meadow|"
                "pond|library|playground|woods|field")
OBJECTS = _words("ball|kite|doll|book|toy car|teddy bear|hat|box|truck|boat|balloon|shell|drum|"
                 "robot|train|blanket|cup|puzzle|bike|scarf|bucket|crayon|necklace|toy plane")
COLORS = _words("red|blue|green|yellow|pink|purple|orange|shiny|big|little|soft|old|new|white|"
                "brown|tiny|fancy|striped")
ACTIVITIES = _words("play outside|run fast|jump high|dance|sing songs|draw pictures|read books|"
                    "swim|climb trees|build towers|paint|fly kites|look at the stars|bake cookies|"
                    "pick flowers|ride a bike|splash in puddles|play hide and seek|"
                    "count the clouds|watch the birds")
GROWNUPS = _words("mom|dad|grandma|grandpa|teacher|aunt|uncle")
HIDING = _words("under a big rock|behind a tree|in the tall grass|under the bench|"
                "next to the pond|inside a hollow log|under a pile of leaves|near the gate|"
                "on top of a bush|in the sand")
TROUBLES = (("stuck in a tree", "get down"), ("hurt its leg", "walk again"),
            ("lost", "find its home"), ("very hungry", "find some food"),
            ("caught in a net", "get free"), ("cold and wet", "get warm"))
TREASURES = _words("a shiny key|an old map|a tiny box|a golden coin|a pretty stone|a funny hat|"
                   "a little bell|a blue feather|a lost letter|a magic seed")
INSIDE = _words("a small note that said hello|a bunch of sweet candy|a tiny toy bird|"
                "a ring that sparkled in the sun|some seeds for the garden|a picture of a castle|"
                "nothing at all, which made everyone laugh|a soft red ribbon")
GIFTS = (("a cake", "bake"), ("a card", "make"), ("a necklace", "make"), ("a picture", "draw"),
         ("some cookies", "bake"), ("a song", "write"))
FOODS = _words("apples|cookies|bread|carrots|berries|cheese|soup|nuts")
# fmt: on


def _an(phrase: str) -> str:
    """``"a ball"`` / ``"an apple"``."""
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


class _Teller:
    """Tells one story; ``self.r`` is the shared ``random.Random``."""

    def __init__(self, r: random.Random):
        self.r = r
        c = r.choice
        hero_is_child = r.random() < 0.7
        g = c("fm")
        if hero_is_child:
            name, kind = c(GIRLS if g == "f" else BOYS), c(CHILD_KINDS[g])
        else:
            name, kind = c(PETS), c(ANIMALS)
        fg = c("fm")
        friend = c([n for n in (GIRLS if fg == "f" else BOYS) if n != name])
        self.s = dict(
            N=name,
            kind=kind,
            trait=c(TRAITS),
            place=c(PLACES),
            place2=c(PLACES),
            obj=c(OBJECTS),
            color=c(COLORS),
            act=c(ACTIVITIES),
            act2=c(ACTIVITIES),
            F=friend,
            grown=c(GROWNUPS),
            hide=c(HIDING),
            food=c(FOODS),
            animal=c(ANIMALS),
            treasure=c(TREASURES),
            inside=c(INSIDE),
            day=c(
                (
                    "One day",
                    "One sunny day",
                    "One morning",
                    "The next day",
                    "One afternoon",
                    "Later that day",
                    "One warm day",
                    "One cold morning",
                )
            ),
        )
        self.s.update(self._pronouns("", g))
        self.s.update(self._pronouns("f", fg))
        self.s["Grown"] = _cap(self.s["grown"])
        self.s["a_kind"] = _an(f"{self.s['trait']} {kind}")
        self.s["a_obj"] = _an(f"{self.s['color']} {self.s['obj']}")

    @staticmethod
    def _pronouns(prefix: str, g: str) -> dict[str, str]:
        he, him, his = ("she", "her", "her") if g == "f" else ("he", "him", "his")
        return {
            prefix + "he": he,
            prefix + "him": him,
            prefix + "his": his,
            prefix + "He": _cap(he),
            prefix + "His": _cap(his),
        }

    def say(self, *forms: str) -> str:
        """One sentence: a random form with the story's slots filled in."""
        return self.r.choice(forms).format(**self.s)

    def opening(self) -> list[str]:
        out = [
            self.say(
                "Once upon a time, there was {a_kind} named {N}.",
                "Once upon a time, there was {a_kind} called {N}.",
                "Once upon a time, in a small town, there lived {a_kind} named {N}.",
                "There was once {a_kind} named {N}.",
                "{N} was {a_kind} who loved to {act}.",
                "Long ago, near a big {place}, lived {a_kind} named {N}.",
                "In a little house by the {place}, there was {a_kind} named {N}.",
                "{day}, {a_kind} named {N} went to the {place}.",
            )
        ]
        out.append(
            self.say(
                "{He} loved to {act} with {his} friend {F}.",
                "{He} had {a_obj} that {he} loved very much.",
                "{He} liked to {act} every day.",
                "{His} favorite thing was {a_obj}.",
                "{He} lived with {his} {grown} and a little {animal}.",
                "Every day, {he} went to the {place} to {act}.",
                "{He} was always happy when {he} could {act}.",
            )
        )
        return out

    # -- plots: each returns the middle of the story as a list of sentences ------------------
    def lost(self) -> list[str]:
        return [
            self.say(
                "{day}, {N} took {his} {color} {obj} to the {place}.",
                "{day}, {N} went to the {place} with {his} {color} {obj}.",
            ),
            self.say(
                "{He} played with it all morning.",
                "{He} showed it to {F}.",
                "The sun was bright and the sky was blue.",
            ),
            self.say(
                "But when it was time to go home, the {obj} was gone!",
                "Suddenly, {he} could not find {his} {obj}.",
                "Then a big wind came and the {obj} was gone.",
            ),
            self.say(
                "{N} was very sad and started to cry.",
                '"Where is my {obj}?" {N} cried.',
                "{N} felt sad because {he} loved the {obj} so much.",
            ),
            self.say(
                '{F} said, "Don\'t worry, I will help you look."',
                '{His} {grown} came and said, "Let\'s look for it together."',
                "{F} saw that {N} was sad, so {fhe} came to help.",
            ),
            self.say(
                "They looked everywhere.",
                "They searched the whole {place}.",
                "They looked high and low.",
            ),
            self.say(
                "At last, {N} found the {obj} {hide}.",
                "Then {F} saw something {color} {hide}. It was the {obj}!",
            ),
            self.say(
                '"Thank you!" said {N}, and {he} gave {F} a big hug.',
                "{N} was so happy that {he} jumped up and down.",
            ),
        ]

    def share(self) -> list[str]:
        return [
            self.say("{day}, {F} came to play.", "{day}, {N} met {F} at the {place}."),
            self.say(
                '{F} saw the {obj} and asked, "Can I play with your {obj}?"',
                '"I want to play with the {obj} too," said {F}.',
            ),
            self.say(
                'But {N} said, "No, it is my {obj}!"',
                "{N} did not want to share, so {he} held the {obj} tight.",
            ),
            self.say(
                "{F} was sad and walked away.",
                "{F} felt sad and sat down alone.",
                "They pulled and pulled, and the {obj} broke.",
            ),
            self.say(
                "{N} felt bad because {he} did not want {F} to be sad.",
                "{N} looked at {F} and thought about it.",
                "Then {N} felt sorry.",
            ),
            self.say(
                '"I am sorry," said {N}. "We can play together."',
                '{N} gave the {obj} to {F} and said, "Let\'s share."',
            ),
            self.say(
                "They played with the {obj} all day and had lots of fun.",
                "They laughed and played until the sun went down.",
            ),
        ]

    def fear(self) -> list[str]:
        return [
            self.say(
                "{day}, {N} wanted to {act2}, but {he} was scared.",
                "{N} wanted to {act2} like {F}, but {he} was afraid.",
            ),
            self.say(
                '"What if I fall?" {he} asked.',
                '"I can\'t do it," said {N}.',
                "{His} legs shook and {his} heart went fast.",
            ),
            self.say(
                '{His} {grown} smiled and said, "You can do it. Just try."',
                '{F} held {his} hand and said, "I will stay with you."',
            ),
            self.say("{N} took a deep breath.", "{N} closed {his} eyes and counted to three."),
            self.say(
                "Then {he} tried, and {he} did it!",
                "{He} tried again and again, and at last {he} could {act2}.",
            ),
            self.say("{N} felt very proud.", '"I did it!" {N} shouted with joy.'),
        ]

    def rescue(self) -> list[str]:
        trouble, need = self.r.choice(TROUBLES)
        self.s.update(trouble=trouble, need=need)
        return [
            self.say("{day}, {N} went to the {place}.", "{day}, {N} was walking in the {place}."),
            self.say(
                "There {he} saw a little {animal} that was {trouble}.",
                "{He} heard a small sound. It was a little {animal}, and it was {trouble}.",
            ),
            self.say(
                '"Please help me," said the {animal}.',
                "The {animal} looked very sad.",
                '"Oh no, poor {animal}!" said {N}.',
            ),
            self.say(
                "{N} wanted to help it {need}, so {he} thought hard.",
                "{N} was {trait}, so {he} wanted to help.",
            ),
            self.say(
                "{He} asked {his} {grown} for help, and together they helped it {need}.",
                "{He} worked slowly and gently, and soon the {animal} could {need}.",
                "{He} gave it some {food}, and the {animal} felt better.",
            ),
            self.say('"Thank you, {N}!" said the {animal}.', "The {animal} was very happy."),
            self.say(
                "From that day on, {N} and the {animal} were best friends.",
                "After that, the {animal} came to visit {N} every day.",
            ),
        ]

    def discovery(self) -> list[str]:
        return [
            self.say(
                "{day}, {N} and {F} went to the {place2}.",
                "{day}, {N} went to explore the {place2}.",
            ),
            self.say(
                "There {he} found {treasure} {hide}.", "Under a big tree, {he} found {treasure}."
            ),
            self.say(
                '"What is this?" asked {N}.',
                "{N} was very curious.",
                '"Look!" said {N}. "What can it be?"',
            ),
            self.say("Next to it was an old box.", "Then {he} saw a little box with a lock."),
            self.say(
                "{He} opened the box and found {inside}.", "Inside the box there was {inside}."
            ),
            self.say("{N} ran home to show {his} {grown}.", "{N} and {F} smiled at each other."),
            self.say("It was the best day ever.", "{N} kept it in a safe place."),
        ]

    def rule(self) -> list[str]:
        return [
            self.say(
                '{day}, {his} {grown} said, "Do not go near the {place2} alone."',
                '{His} {grown} said, "Stay in the yard and do not play in the mud."',
            ),
            self.say("But {N} did not listen.", "But {N} wanted to see, so {he} went anyway."),
            self.say(
                "{He} slipped and fell, and {his} {obj} got all dirty.",
                "{He} got lost and did not know the way home.",
                "{He} fell into the water and got very wet.",
            ),
            self.say("{N} was scared and began to cry.", "{N} felt cold and sad."),
            self.say(
                "{His} {grown} came and took {him} home.",
                "Soon {his} {grown} found {him} and gave {him} a big hug.",
            ),
            self.say(
                '"I am sorry," said {N}. "I will listen next time."',
                "{N} said sorry, and {his} {grown} smiled.",
            ),
            self.say(
                "{N} learned that it is good to listen.",
                "From then on, {N} always listened to {his} {grown}.",
            ),
        ]

    def gift(self) -> list[str]:
        what, verb = self.r.choice(GIFTS)
        self.s.update(gift=what, verb=verb)
        return [
            self.say(
                "{day}, it was {F}'s birthday.", "{day}, {N} wanted to surprise {his} {grown}."
            ),
            self.say(
                "{N} wanted to {verb} {gift}.", "{N} decided to {verb} {gift} all by {him}self."
            ),
            self.say("{He} worked hard all morning.", "{He} asked {his} {grown} to help {him}."),
            self.say(
                "But then the {animal} ran in and made a big mess!",
                "But {he} made a mistake and had to start again.",
            ),
            self.say("{N} did not give up.", "{N} was sad, but {he} tried again."),
            self.say("When {he} was done, {gift} looked very nice.", "At last, {gift} was ready."),
            self.say('"Thank you! I love it!" they said.', "Everyone smiled and clapped."),
        ]

    def rain(self) -> list[str]:
        return [
            self.say("{day}, it was raining outside.", "{day}, the sky was gray and it rained."),
            self.say(
                "{N} could not go to the {place}, so {he} was sad.",
                '"I want to {act}," said {N}, looking out of the window.',
            ),
            self.say(
                '{His} {grown} said, "Let\'s play a game inside."',
                "Then {F} came over with a big box of toys.",
            ),
            self.say(
                "They built a fort with a {color} blanket.",
                "They played with the {obj} and made up a story.",
                "They made a castle out of pillows.",
            ),
            self.say("They laughed and had so much fun.", "{N} forgot all about the rain."),
            self.say(
                "When the rain stopped, they saw a big rainbow.", "Soon the sun came out again."
            ),
        ]

    PLOTS = ("lost", "share", "fear", "rescue", "discovery", "rule", "gift", "rain")

    def ending(self) -> list[str]:
        return [
            self.say(
                "The end.",
                "They lived happily ever after.",
                "{N} smiled and went to sleep.",
                "It was a happy day for {N}.",
                "{N} was happy, and so was {F}.",
                "That night, {N} dreamed about the {place}.",
                "And they all had a good day.",
            )
        ]

    def tell(self) -> str:
        plots = self.r.sample(self.PLOTS, k=1 if self.r.random() < 0.75 else 2)
        middle = [s for p in plots for s in getattr(self, p)()]
        # Randomly drop a few middle beats so plot lengths vary.
        middle = [s for s in middle if self.r.random() > 0.12] or middle[:1]
        return " ".join(self.opening() + middle + self.ending())


def iter_stories(seed: int = 0) -> Iterator[str]:
    """An endless stream of stories from ``random.Random(seed)``."""
    r = random.Random(seed)
    while True:
        yield _Teller(r).tell()


def generate_stories(n: int, seed: int = 0) -> list[str]:
    """``n`` short stories in the style of TinyStories, reproducible from ``seed``.

    Args:
        n: how many stories (duplicates are possible but rare).
        seed: the seed of the ``random.Random`` that draws every choice.

    Returns:
        A list of ``n`` strings, each one story of roughly 60–180 words.
    """
    checks.check_int(n, "n", minimum=0)
    checks.check_int(seed, "seed")
    stream = iter_stories(seed)
    return [next(stream) for _ in range(n)]
