"""The procedural world: scenes, images, six-language grammar, prompts, the train/held-out content split."""

from __future__ import annotations

import numpy as np
import pytest

from florenz_scaling.data.language import (
    DECODER_PREFIXES,
    Obj,
    caption_prompt,
    describe,
    translation_prompt,
)
from florenz_scaling.data.world import RGB, Scene, is_heldout_key, render, sample_scene

LANGS = ("en", "de", "fr", "es", "ru", "zh")


def test_grammar_per_language() -> None:
    big_red_circle = [Obj("circle", "red", "large", "left", 1)]
    plain = {lang: "".join(describe(big_red_circle, lang, framed=False)) for lang in LANGS}
    assert plain["en"] == "A large red circle on the left."
    assert plain["de"] == "Ein großer roter Kreis links."
    assert plain["fr"] == "Un grand cercle rouge à gauche."  # colour after the noun
    assert plain["es"] == "Un círculo rojo grande a la izquierda."  # colour and size after the noun
    assert plain["ru"] == "Большой красный круг слева."
    assert plain["zh"] == "左边有一个红色的大圆形。"  # position first, measure word

    two_small_stars = [Obj("star", "blue", "small", "top", 2)]
    assert "".join(describe(two_small_stars, "fr", False)) == "Deux petites étoiles bleues en haut."
    assert "".join(describe(two_small_stars, "es", False)) == "Dos estrellas azules pequeñas arriba."
    assert "".join(describe(two_small_stars, "ru", False)) == "Две маленькие синие звезды вверху."
    assert "".join(describe(two_small_stars, "de", False)) == "Zwei kleine blaue Sterne oben."
    three = [Obj("cross", "black", "large", "center", 3)]
    assert "".join(describe(three, "en", False)) == "Three large black crosses in the center."
    assert "".join(describe(three, "ru", False)) == "Три больших чёрных креста в центре."


def test_framed_descriptions_split_off_the_decoder_prefix() -> None:
    objs = [Obj("circle", "red", "large", "left", 1), Obj("diamond", "green", "small", "bottom right", 1)]
    for lang in LANGS:
        prefix, body = describe(objs, lang, framed=True)
        assert prefix == DECODER_PREFIXES[lang]
        assert describe(objs, lang, framed=False)[0] == ""
    # "Das Bild zeigt" governs the accusative.
    assert describe(objs, "de", True) == (
        "Das Bild zeigt",
        " einen großen roten Kreis links und eine kleine grüne Raute unten rechts.",
    )
    assert "".join(describe(objs, "en", True)) == (
        "The image shows a large red circle on the left and a small green diamond at the bottom right."
    )
    assert describe(objs, "zh", True)[1] == "左边的一个大红色圆形和右下方的一个小绿色菱形。"


def test_prompts_follow_the_paper() -> None:
    assert caption_prompt("de") == "The target language is German. What does the image describe?"
    assert translation_prompt("es", "A cat.") == (
        "The target language is Spanish. Translate the following text: A cat."
    )


def test_scripts_and_word_order_on_random_scenes() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        scene = sample_scene(rng, "train")
        text = {lang: "".join(describe(scene.objects, lang, scene.framed)) for lang in LANGS}
        assert any("\u0400" <= ch <= "\u04ff" for ch in text["ru"])
        assert all(not ch.isascii() for ch in text["zh"])
        assert len(set(text.values())) == len(LANGS)
        o = scene.objects[0]
        # French colour follows the noun; English colour precedes it.
        en_words = text["en"].lower().split()
        assert en_words.index(o.colour) < en_words.index(
            o.shape if o.count == 1 else {"cross": "crosses"}.get(o.shape, o.shape + "s")
        )


def test_scene_sampling_and_rendering_are_deterministic() -> None:
    a = sample_scene(np.random.default_rng([7, 1]), "train")
    b = sample_scene(np.random.default_rng([7, 1]), "train")
    assert a == b
    for size in (32, 64, 224):
        img = render(a, size)
        assert img.shape == (size, size, 3) and img.dtype == np.uint8
        assert np.array_equal(img, render(b, size))


def test_image_shows_the_described_colours() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        scene = sample_scene(rng, "train")
        img = render(scene, 64).reshape(-1, 3)
        for o in scene.objects:
            assert (img == np.array(RGB[o.colour], dtype=np.uint8)).all(axis=1).sum() >= 4, o
        assert 1 <= len(scene.objects) <= 3 and len({o.position for o in scene.objects}) == len(scene.objects)


def test_objects_land_in_their_grid_cell() -> None:
    obj = Obj("square", "red", "large", "bottom right", 1)
    scene = Scene((obj,), False, (128, 128, 128), (((0.0, 0.0),),))
    img = render(scene, 96)
    ys, xs = np.nonzero((img == np.array(RGB["red"], dtype=np.uint8)).all(axis=2))
    assert ys.min() >= 64 and xs.min() >= 64


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_split_is_by_content(split: str) -> None:
    rng = np.random.default_rng(5)
    keys = {sample_scene(rng, split).key for _ in range(300)}
    assert all(is_heldout_key(k) == (split == "heldout") for k in keys)
    with pytest.raises(ValueError):
        sample_scene(rng, "test")
