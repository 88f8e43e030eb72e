"""Training (torch): the synthetic speech corpus, HDF5 clip datasets, the speech, motion, emotion and image
models, distributed training and held-out evaluation. Needs ``pip install toonsync[train]``.
"""

if (
    __name__ != "toonsync.training"
):  # loaded by its folder name (e.g. from a checkout on sys.path): refuse a second copy
    raise ImportError(f"import this package as toonsync.training, not {__name__} (install it: pip install -e .)")
