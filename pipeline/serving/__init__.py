"""Serving: the local web page and HTTP API (`cli.py serve`): app (routes, host and origin checks, limits), upload
(streaming and checking uploads), queue (the bounded queue in front of the workers), worker (predictions in child
processes that the time limit and shutdown can kill), preview (WebM copies of clips the browser cannot play), server
(running it with uvicorn: signals, shutdown), web/ (the page: one HTML, one JS, one CSS).

May import core, data, extractors, model, pipeline.extraction and pipeline.prediction.
"""
