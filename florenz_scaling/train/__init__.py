"""One run inside its job: build the model and DeepSpeed engine, stream batches, evaluate every held-out
pair, checkpoint atomically, resume, and stop cleanly on preemption. torch and DeepSpeed live here.

``florenz_scaling.train:main`` is the entry point every launched job calls with its run directory.
"""

from florenz_scaling.train.run import main

__all__ = ["main"]
