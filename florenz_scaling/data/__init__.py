"""Data for Florenz scaling studies: a procedural multilingual world (or WebDataset shards) with incomplete
task-language coverage, the encoder's and the decoders' tokenizers, balanced resumable training streams and
held-out sets.

Typical use::

    data = prepare(spec.data, sweep_dir.data)            # tokenizers built once, shared by all sizes
    stream = data.train_stream(seed, rank, world_size)   # infinite, balanced, resumable
    batch = stream.next_batch(32)                        # dict of tensors, see ``collate``
    ho = data.heldout()                                  # ho.pairs, ho.group_of(p), ho.batches(p, 32)
"""

from florenz_scaling.data.attributes import ATTRIBUTES, attribute_batch, cell_attributes
from florenz_scaling.data.collate import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD, Sample, collate
from florenz_scaling.data.heldout import HeldOut, heldout_scene, synthetic_heldout
from florenz_scaling.data.language import (
    DECODER_PREFIXES,
    LANGUAGE_NAMES,
    caption_prompt,
    describe,
    translation_prompt,
)
from florenz_scaling.data.prepare import (
    DATA_FORMAT_VERSION,
    PreparedData,
    TrainStream,
    make_heldout,
    make_train_stream,
    prepare,
    spec_hash,
)
from florenz_scaling.data.stream import SyntheticStream, synthetic_sample
from florenz_scaling.data.tokenizer import (
    SPECIALS,
    Tokenizer,
    decoder_pieces,
    train_english_tokenizer,
    train_tokenizer,
    vocab_size_of,
)
from florenz_scaling.data.webdataset import WebDatasetStream, webdataset_heldout
from florenz_scaling.data.world import Scene, is_heldout_key, render, sample_scene

__all__ = [
    "ATTRIBUTES",
    "attribute_batch",
    "cell_attributes",
    "DATA_FORMAT_VERSION",
    "DECODER_PREFIXES",
    "IGNORE_INDEX",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LANGUAGE_NAMES",
    "SPECIALS",
    "HeldOut",
    "PreparedData",
    "Sample",
    "Scene",
    "SyntheticStream",
    "Tokenizer",
    "TrainStream",
    "WebDatasetStream",
    "caption_prompt",
    "collate",
    "decoder_pieces",
    "describe",
    "heldout_scene",
    "is_heldout_key",
    "make_heldout",
    "make_train_stream",
    "prepare",
    "render",
    "sample_scene",
    "spec_hash",
    "synthetic_heldout",
    "synthetic_sample",
    "train_english_tokenizer",
    "train_tokenizer",
    "translation_prompt",
    "vocab_size_of",
    "webdataset_heldout",
]
