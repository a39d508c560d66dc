"""Serving: the local web page and HTTP API (`cli.py serve`): app (routes, security headers, running the server),
upload (streaming and checking uploads), queue (the bounded queue in front of the prediction workers), web/ (the
page: one HTML, one JS, one CSS).

May import core, data, extractors, model and pipeline.prediction.
"""
