"""Extraction: clips and their transcripts -> one feature row per utterance and modality, and dataset files.

settings (ExtractSettings: what decides the features, built once and handed to every worker), clips (which files
are clips, their video ids), step (one clip: decode, utterances, extractors), cache (per-clip results on disk),
pool and lifeline (this machine's worker processes), ray_tasks (one Ray task per clip), labels (labels.csv),
folder (a whole folder -> a dataset file: `cli.py extract`).

May import core, data, extractors and pipeline.cluster; predict, evaluate and the importers build on it.
"""
