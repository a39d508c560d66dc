"""Fixtures shared by several test modules."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def minilm():
    """The MiniLM text extractor with its model loaded: once per test session (~5 s)."""
    from extractors import build_extractor

    extractor = build_extractor("text", "minilm")
    _ = extractor.model
    return extractor
