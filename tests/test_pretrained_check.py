"""Checkpoints are checked before anything is submitted: ``launch``, ``--dry-run`` and ``pretrained check``
compare each checkpoint's config, keys and shapes with its size, and name the field and both values."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from checkpoint_dirs import florence2, save_gemma, save_native, save_original
from tokenizer_dirs import write_bart_dir, write_gemma_dir

from florenz_scaling.cli import main
from florenz_scaling.spec.sizes import SIZES


def sweep(tmp_path: Path, pretrained: dict, sizes: tuple[str, ...] = ("T-0.5M",)) -> Path:
    spec = {
        "name": "ckpt",
        "sizes": list(sizes),
        "grid": {"steps": [4], "global_batch": 4},
        "train": {"micro_batch": 4, "threads": 1},
        "pretrained": pretrained,
        "launch": {"executor": "local"},
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpts")
    return {
        "t05-original": save_original(florence2(SIZES["T-0.5M"], seed=1), root / "t05-original"),
        "t13-native": save_native(florence2(SIZES["T-1.3M"], seed=2), root / "t13-native"),
        "tg-florence": save_original(florence2(SIZES["TG-1.2M"], seed=3), root / "tg-florence"),
        "tg-gemma": (save_gemma(SIZES["TG-1.2M"], root / "tg-gemma", seed=4), root / "tg-gemma")[1],
    }


def test_a_dry_run_with_a_checkpoint_of_another_size_fails_naming_field_and_values(
    tmp_path: Path, checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = sweep(tmp_path, {"T-0.5M": {"florence": str(checkpoints["t13-native"])}})
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["launch", str(path), "--dry-run"]) != 0
    err = capsys.readouterr().err
    assert "pretrained.T-0.5M.florence" in err
    assert "vision_config.embed_dim is [12, 24, 48, 96]" in err and "T-0.5M has [8, 16, 32, 64]" in err
    out = tmp_path / "out"
    assert main(["launch", str(path), "--out", str(out)]) != 0
    assert "pretrained.T-0.5M.florence" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "nothing written"


def test_pretrained_check_lists_layouts_loads_ignored_and_init(
    tmp_path: Path, checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pretrained = {
        "T-0.5M": {"florence": str(checkpoints["t05-original"])},
        "TG-1.2M": {"florence": str(checkpoints["tg-florence"]), "gemma": str(checkpoints["tg-gemma"])},
    }
    path = sweep(tmp_path, pretrained, sizes=("T-0.5M", "TG-1.2M"))
    assert main(["pretrained", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "vocabulary switch of BART decoders: yes" in out
    assert f"florence: {checkpoints['t05-original']} (layout florence2-original)" in out
    assert "loads 200 tensors" in out
    assert "ignores language_model.final_logits_bias (1): BART's output bias" in out
    assert "decoder.decoder.embed_tokens.weight: vocabulary switch" in out
    assert "(layout gemma2)" in out
    assert (
        "ignores language_model.model.decoder.embed_positions (1), language_model.model.decoder.embed_tokens"
        in out
    )
    assert "language_model.model.decoder.layers (26): Gemma sizes take" in out
    assert out.count("decoder.decoder.embed_tokens.weight: vocabulary switch") == 1
    assert "starts at init: " in out and "decoder.xattn.*" in out
    assert main(["launch", str(path), "--dry-run"]) == 0
    assert "pretrained checkpoints (what loads" in capsys.readouterr().out


def test_a_gemma_checkpoint_of_another_shape_is_refused(
    tmp_path: Path, checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    other = save_gemma(SIZES["TG-8M"], tmp_path / "gemma-8m") and tmp_path / "gemma-8m"
    pretrained = {"TG-1.2M": {"florence": str(checkpoints["tg-florence"]), "gemma": str(other)}}
    assert main(["pretrained", "check", str(sweep(tmp_path, pretrained, sizes=("TG-1.2M",)))]) != 0
    err = capsys.readouterr().err
    assert "pretrained.TG-1.2M.gemma" in err and "num_hidden_layers is 4" in err and "TG-1.2M has 2" in err


def test_tokenizers_whose_vocabulary_the_sizes_cannot_hold_are_refused_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(0)
    texts = [
        " ".join("".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 7))) for _ in range(30))
        for _ in range(3000)
    ]
    big_gemma = write_gemma_dir(tmp_path / "gemma-tok", texts, vocab_size=2000)
    big_bart = write_bart_dir(tmp_path / "bart-tok", texts, vocab_size=2000)
    small_gemma = write_gemma_dir(tmp_path / "small-tok", texts[:200], vocab_size=600)

    def refused(data: dict) -> str:
        path = sweep(tmp_path, {})
        spec = yaml.safe_load(path.read_text()) | {
            "data": {"kind": "webdataset", "path": str(tmp_path), **data}
        }
        path.write_text(yaml.safe_dump(spec))
        assert main(["pretrained", "check", str(path)]) != 0
        return capsys.readouterr().err

    err = refused({"tokenizer": str(big_gemma), "encoder_tokenizer": str(small_gemma)})
    assert "data.tokenizer" in err and "2001 tokens but size T-0.5M's decoder holds 1024" in err
    err = refused({"tokenizer": str(small_gemma), "encoder_tokenizer": str(big_bart)})
    assert "data.encoder_tokenizer" in err and "size T-0.5M's encoder holds 1024" in err
