"""The demo (`make demo`, `python -m demo`) and the clip generator it shares with the tests: not pipeline stages,
but users of them. demo.run builds a labelled corpus, extracts, trains and predicts; demo.clipgen makes
talking-face clips from espeak-ng speech and real face photographs."""
