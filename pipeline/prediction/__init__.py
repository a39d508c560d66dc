"""Prediction: loaded checkpoints + a clip -> per-utterance sentiment, label and emotions (predict), and those
results as a table, JSON, CSV or plot (output).

May import core, data, extractors, model and pipeline.extraction (the same per-clip step `extract` runs).
"""
