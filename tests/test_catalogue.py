"""Runs the bad-input catalogue (tests/catalogue.py): typed errors, warnings with fallbacks, acceptance."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from toonsync.runtime.errors import ToonsyncError

from .catalogue import CASES, ROOT, Case, render_doc, run_case


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_catalogue(case: Case, tmp_path):
    if case.id == "img-cmyk" or case.id == "img-exif-rotated":
        pytest.importorskip("PIL", reason="Pillow builds the CMYK/EXIF fixtures")
    before = set(tmp_path.rglob("*"))
    if case.kind == "cli":
        r = run_case(case, tmp_path)
        assert r.returncode == (2 if "unrecognized" in case.match else 1), r.stderr
        assert case.match in r.stderr and "Traceback" not in r.stderr
        if r.returncode == 1:
            assert r.stderr.strip().count("\n") == 0  # one line
        assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob("*.avi"))
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if case.expect == "error":
            with pytest.raises(case.exc, match=case.match) as ei:
                run_case(case, tmp_path)
            assert isinstance(ei.value, ToonsyncError)
            assert isinstance(ei.value, (ValueError, FileNotFoundError, RuntimeError))
        else:
            out = run_case(case, tmp_path)
            if case.kind == "audio":
                assert out.dtype == np.float32 and out.ndim == 1 and out.size >= 160
                assert np.isfinite(out).all() and np.abs(out).max() <= 1.0
    kinds = [w.category for w in caught]
    if case.expect == "warn":
        assert case.exc in kinds and any(case.match in str(w.message) for w in caught)
    # nothing half-written: the only new files are the inputs the case made
    leftovers = [p for p in set(tmp_path.rglob("*")) - before if p.name.startswith(".") and ".tmp" in p.name]
    assert not leftovers


def test_catalogue_is_big_enough_and_documented():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    doc = (ROOT / "docs" / "reliability.md").read_text()
    assert doc == render_doc(), "docs/reliability.md is stale: run `python -m tests.catalogue`"
