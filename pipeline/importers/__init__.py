"""Importers: datasets from other formats and corpora (`cli.py import ...`, `make pretrained`).

csd (CMU-MultimodalSDK computational sequences: CMU-MOSEI, CMU-MOSI) with align (sequences averaged over label
intervals), seed (the seed's 9-tuple pickle), text (labelled text CSVs), corpora (MELD, GoEmotions, RAVDESS).

May import core, data, extractors and pipeline.extraction (RAVDESS and MELD clips are extracted as clips are).
"""
