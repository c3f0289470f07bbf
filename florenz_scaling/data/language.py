"""Six-language grammar for the synthetic world: lexicons, agreement, word order, prompts, decoder prefixes.

Every language turns the same list of objects into a sentence with real words and its own grammar:

- en: determiner + size + colour + noun + position ("a large red circle on the left").
- de: mixed/strong adjective declension by gender, number and case ("ein großer roter Kreis links";
  accusative after "Das Bild zeigt": "einen großen roten Kreis").
- fr: size before and colour after the noun, agreeing in gender and number ("une petite étoile rouge").
- es: colour then size after the noun ("un círculo rojo grande a la izquierda").
- ru: Cyrillic, numeral government (2/3 + genitive singular noun, genitive plural adjectives for m.).
- zh: position first, measure word 个, no inflection ("左边有一个红色的大圆形").

A description comes in two styles that share the scene: *plain* ("A large red circle on the left.") and
*framed* by the decoder prefix ("The image shows a large red circle on the left."). ``describe`` returns
(prefix, body) so the prefix can be tokenised on its own and masked from the loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class Obj(NamedTuple):
    """One described object group: ``count`` copies of a shape with one colour and size at one position."""

    shape: str
    colour: str
    size: str
    position: str
    count: int


SHAPES = ("circle", "square", "triangle", "diamond", "star", "cross")
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black")
SIZES = ("small", "large")
POSITIONS = (
    "top left",
    "top",
    "top right",
    "left",
    "center",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
)

LANGUAGE_NAMES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "ru": "Russian",
    "zh": "Chinese",
}

# The paper's prefixes for conditional emergence of unseen-language captioning (reference §4).
DECODER_PREFIXES = {
    "en": "The image shows",
    "de": "Das Bild zeigt",
    "fr": "La photo montre",
    "es": "La imagen muestra",
    "ru": "На картинке изображен",
    "zh": "图为",
}


def caption_prompt(lang: str) -> str:
    """Encoder prompt for captioning in ``lang`` (the paper's expansion of ``<LANG_XX><CAPTION>``)."""
    return f"The target language is {LANGUAGE_NAMES[lang]}. What does the image describe?"


def translation_prompt(lang: str, source: str) -> str:
    """Encoder prompt for en→``lang`` translation of ``source`` (expansion of ``<LANG_XX><TRANSLATE>x``)."""
    return f"The target language is {LANGUAGE_NAMES[lang]}. Translate the following text: {source}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(items: Sequence[str], conj: str) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {conj} " + items[-1]


# --- English ------------------------------------------------------------------------------------------

_EN_NOUN = {
    "circle": "circle",
    "square": "square",
    "triangle": "triangle",
    "diamond": "diamond",
    "star": "star",
    "cross": "cross",
}
_EN_PLURAL = {"cross": "crosses"}
_EN_POS = {
    "top left": "at the top left",
    "top": "at the top",
    "top right": "at the top right",
    "left": "on the left",
    "center": "in the center",
    "right": "on the right",
    "bottom left": "at the bottom left",
    "bottom": "at the bottom",
    "bottom right": "at the bottom right",
}
_EN_NUM = {1: "a", 2: "two", 3: "three"}


def _en(o: Obj, framed: bool) -> str:
    noun = _EN_NOUN[o.shape] if o.count == 1 else _EN_PLURAL.get(o.shape, _EN_NOUN[o.shape] + "s")
    return f"{_EN_NUM[o.count]} {o.size} {o.colour} {noun} {_EN_POS[o.position]}"


# --- German -------------------------------------------------------------------------------------------

_DE_NOUN = {
    "circle": ("Kreis", "m", "Kreise"),
    "square": ("Quadrat", "n", "Quadrate"),
    "triangle": ("Dreieck", "n", "Dreiecke"),
    "diamond": ("Raute", "f", "Rauten"),
    "star": ("Stern", "m", "Sterne"),
    "cross": ("Kreuz", "n", "Kreuze"),
}
_DE_ADJ = {
    "small": "klein",
    "large": "groß",
    "red": "rot",
    "green": "grün",
    "blue": "blau",
    "yellow": "gelb",
    "purple": "violett",
    "orange": "orangefarben",
    "white": "weiß",
    "black": "schwarz",
}
_DE_POS = {
    "top left": "oben links",
    "top": "oben",
    "top right": "oben rechts",
    "left": "links",
    "center": "in der Mitte",
    "right": "rechts",
    "bottom left": "unten links",
    "bottom": "unten",
    "bottom right": "unten rechts",
}
# (article, adjective ending) after the indefinite article, by (case, gender): mixed declension.
_DE_SG = {
    ("nom", "m"): ("ein", "er"),
    ("nom", "n"): ("ein", "es"),
    ("nom", "f"): ("eine", "e"),
    ("acc", "m"): ("einen", "en"),
    ("acc", "n"): ("ein", "es"),
    ("acc", "f"): ("eine", "e"),
}
_DE_NUM = {2: "zwei", 3: "drei"}


def _de(o: Obj, framed: bool) -> str:
    noun, gender, plural = _DE_NOUN[o.shape]
    size, colour = _DE_ADJ[o.size], _DE_ADJ[o.colour]
    if o.count == 1:
        # "Das Bild zeigt" governs the accusative; the plain sentence is a nominative noun phrase.
        art, end = _DE_SG[("acc" if framed else "nom", gender)]
        return f"{art} {size}{end} {colour}{end} {noun} {_DE_POS[o.position]}"
    # Plural without article: strong declension, -e in nominative and accusative alike.
    return f"{_DE_NUM[o.count]} {size}e {colour}e {plural} {_DE_POS[o.position]}"


# --- French -------------------------------------------------------------------------------------------

_FR_NOUN = {
    "circle": ("cercle", "m", "cercles"),
    "square": ("carré", "m", "carrés"),
    "triangle": ("triangle", "m", "triangles"),
    "diamond": ("losange", "m", "losanges"),
    "star": ("étoile", "f", "étoiles"),
    "cross": ("croix", "f", "croix"),
}
# Forms: (m sg, f sg, m pl, f pl).
_FR_ADJ = {
    "small": ("petit", "petite", "petits", "petites"),
    "large": ("grand", "grande", "grands", "grandes"),
    "red": ("rouge", "rouge", "rouges", "rouges"),
    "green": ("vert", "verte", "verts", "vertes"),
    "blue": ("bleu", "bleue", "bleus", "bleues"),
    "yellow": ("jaune", "jaune", "jaunes", "jaunes"),
    "purple": ("violet", "violette", "violets", "violettes"),
    "orange": ("orange", "orange", "orange", "orange"),  # colour nouns as adjectives are invariable
    "white": ("blanc", "blanche", "blancs", "blanches"),
    "black": ("noir", "noire", "noirs", "noires"),
}
_FR_POS = {
    "top left": "en haut à gauche",
    "top": "en haut",
    "top right": "en haut à droite",
    "left": "à gauche",
    "center": "au centre",
    "right": "à droite",
    "bottom left": "en bas à gauche",
    "bottom": "en bas",
    "bottom right": "en bas à droite",
}


def _fr(o: Obj, framed: bool) -> str:
    noun, gender, plural = _FR_NOUN[o.shape]
    form = (gender == "f") + 2 * (o.count > 1)
    det = {1: "une" if gender == "f" else "un", 2: "deux", 3: "trois"}[o.count]
    return (
        f"{det} {_FR_ADJ[o.size][form]} {plural if o.count > 1 else noun} {_FR_ADJ[o.colour][form]} "
        f"{_FR_POS[o.position]}"
    )


# --- Spanish ------------------------------------------------------------------------------------------

_ES_NOUN = {
    "circle": ("círculo", "m", "círculos"),
    "square": ("cuadrado", "m", "cuadrados"),
    "triangle": ("triángulo", "m", "triángulos"),
    "diamond": ("rombo", "m", "rombos"),
    "star": ("estrella", "f", "estrellas"),
    "cross": ("cruz", "f", "cruces"),
}


def _es_o(stem: str) -> tuple[str, str, str, str]:
    return stem + "o", stem + "a", stem + "os", stem + "as"


_ES_ADJ = {
    "small": _es_o("pequeñ"),
    "large": ("grande", "grande", "grandes", "grandes"),
    "red": _es_o("roj"),
    "green": ("verde", "verde", "verdes", "verdes"),
    "blue": ("azul", "azul", "azules", "azules"),
    "yellow": _es_o("amarill"),
    "purple": _es_o("morad"),
    "orange": ("naranja", "naranja", "naranja", "naranja"),
    "white": _es_o("blanc"),
    "black": _es_o("negr"),
}
_ES_POS = {
    "top left": "arriba a la izquierda",
    "top": "arriba",
    "top right": "arriba a la derecha",
    "left": "a la izquierda",
    "center": "en el centro",
    "right": "a la derecha",
    "bottom left": "abajo a la izquierda",
    "bottom": "abajo",
    "bottom right": "abajo a la derecha",
}


def _es(o: Obj, framed: bool) -> str:
    noun, gender, plural = _ES_NOUN[o.shape]
    form = (gender == "f") + 2 * (o.count > 1)
    det = {1: "una" if gender == "f" else "un", 2: "dos", 3: "tres"}[o.count]
    return (
        f"{det} {plural if o.count > 1 else noun} {_ES_ADJ[o.colour][form]} {_ES_ADJ[o.size][form]} "
        f"{_ES_POS[o.position]}"
    )


# --- Russian ------------------------------------------------------------------------------------------

# (nominative singular, gender, genitive singular — the form numerals 2-4 govern).
_RU_NOUN = {
    "circle": ("круг", "m", "круга"),
    "square": ("квадрат", "m", "квадрата"),
    "triangle": ("треугольник", "m", "треугольника"),
    "diamond": ("ромб", "m", "ромба"),
    "star": ("звезда", "f", "звезды"),
    "cross": ("крест", "m", "креста"),
}
# Forms: (m nom sg, f nom sg, nom pl, gen pl).
_RU_ADJ = {
    "small": ("маленький", "маленькая", "маленькие", "маленьких"),
    "large": ("большой", "большая", "большие", "больших"),
    "red": ("красный", "красная", "красные", "красных"),
    "green": ("зелёный", "зелёная", "зелёные", "зелёных"),
    "blue": ("синий", "синяя", "синие", "синих"),
    "yellow": ("жёлтый", "жёлтая", "жёлтые", "жёлтых"),
    "purple": ("фиолетовый", "фиолетовая", "фиолетовые", "фиолетовых"),
    "orange": ("оранжевый", "оранжевая", "оранжевые", "оранжевых"),
    "white": ("белый", "белая", "белые", "белых"),
    "black": ("чёрный", "чёрная", "чёрные", "чёрных"),
}
_RU_POS = {
    "top left": "вверху слева",
    "top": "вверху",
    "top right": "вверху справа",
    "left": "слева",
    "center": "в центре",
    "right": "справа",
    "bottom left": "внизу слева",
    "bottom": "внизу",
    "bottom right": "внизу справа",
}


def _ru(o: Obj, framed: bool) -> str:
    noun, gender, gen_sg = _RU_NOUN[o.shape]
    pos = _RU_POS[o.position]
    if o.count == 1:
        form = 1 if gender == "f" else 0
        return f"{_RU_ADJ[o.size][form]} {_RU_ADJ[o.colour][form]} {noun} {pos}"
    # Inanimate accusative = nominative, so the framed and plain forms agree. With 2/3 the noun is genitive
    # singular; adjectives take genitive plural with masculine, (usually) nominative plural with feminine.
    form = 2 if gender == "f" else 3
    num = {2: "две" if gender == "f" else "два", 3: "три"}[o.count]
    return f"{num} {_RU_ADJ[o.size][form]} {_RU_ADJ[o.colour][form]} {gen_sg} {pos}"


# --- Chinese ------------------------------------------------------------------------------------------

_ZH_SHAPE = {
    "circle": "圆形",
    "square": "正方形",
    "triangle": "三角形",
    "diamond": "菱形",
    "star": "星形",
    "cross": "十字形",
}
_ZH_COLOUR = {
    "red": "红色",
    "green": "绿色",
    "blue": "蓝色",
    "yellow": "黄色",
    "purple": "紫色",
    "orange": "橙色",
    "white": "白色",
    "black": "黑色",
}
_ZH_SIZE = {"small": "小", "large": "大"}
_ZH_POS = {
    "top left": "左上方",
    "top": "上方",
    "top right": "右上方",
    "left": "左边",
    "center": "中间",
    "right": "右边",
    "bottom left": "左下方",
    "bottom": "下方",
    "bottom right": "右下方",
}
_ZH_NUM = {1: "一", 2: "两", 3: "三"}


def _zh(o: Obj, framed: bool) -> str:
    num, colour, size = _ZH_NUM[o.count], _ZH_COLOUR[o.colour], _ZH_SIZE[o.size]
    shape, pos = _ZH_SHAPE[o.shape], _ZH_POS[o.position]
    if framed:  # "图为" + noun phrases: "左边的一个大红色圆形"
        return f"{pos}的{num}个{size}{colour}{shape}"
    return f"{pos}有{num}个{colour}的{size}{shape}"  # existential clause: "左边有一个红色的大圆形"


_PHRASE = {"en": _en, "de": _de, "fr": _fr, "es": _es, "ru": _ru, "zh": _zh}
_CONJ = {"en": "and", "de": "und", "fr": "et", "es": "y", "ru": "и"}


def describe(objects: Sequence[Obj], lang: str, framed: bool) -> tuple[str, str]:
    """Describe ``objects`` in ``lang``; returns (prefix, body) with prefix + body the whole sentence.

    ``framed`` opens the sentence with the language's decoder prefix ("The image shows"); the prefix is
    returned separately (empty when not framed) so it can be given to the decoder unscored.
    """
    phrases = [_PHRASE[lang](o, framed) for o in objects]
    if lang == "zh":
        if framed:
            body = phrases[0] if len(phrases) == 1 else "、".join(phrases[:-1]) + "和" + phrases[-1]
            return DECODER_PREFIXES["zh"], body + "。"
        return "", "，".join(phrases) + "。"
    body = _join(phrases, _CONJ[lang]) + "."
    if framed:
        return DECODER_PREFIXES[lang], " " + body
    return "", _cap(body)
