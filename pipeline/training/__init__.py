"""Training: a dataset -> a checkpoint (train: one run; runs: emotions, seeds, ensembles and grids, resumable;
runs_ray: those runs as Ray tasks), and evaluating checkpoints on a dataset, a labelled CSV or clips (evaluate).

May import core, data, extractors, model, pipeline.cluster, pipeline.extraction, pipeline.importers and
pipeline.prediction (evaluate featurises data with a checkpoint's own extractors, as predict does).
"""
