# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch 2.13.0 is installed first and on its own: asked for as a dependency with
# a loose range, pip would fetch a multi-GB CUDA build on a machine that has no GPU.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test venv lint clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	# control: gymnasium[mujoco] and stable-baselines3, so that `reweightlab control` works after `make demo`
	$(BIN)/python -m pip install -q -e ".[dev,control]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/reweightlab demo $(DEMO_ARGS)

# The report's browser test drives Debian's chromium through chromedriver. Installed here when missing
# (root or password-less sudo, apt only); a failed install never fails the build: the test skips and says why.
CHROMIUM_PKGS := chromium chromium-driver
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "note: no apt-get here; install chromium + chromedriver to run the report's browser test"; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing $(CHROMIUM_PKGS) with apt-get (for the report's browser test)"; \
		(apt-get update -qq && apt-get install -y -qq $(CHROMIUM_PKGS) >/dev/null) \
			|| echo "note: could not install $(CHROMIUM_PKGS); the report's browser test will be skipped"; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		echo "installing $(CHROMIUM_PKGS) with sudo apt-get (for the report's browser test)"; \
		(sudo -n apt-get update -qq && sudo -n apt-get install -y -qq $(CHROMIUM_PKGS) >/dev/null) \
			|| echo "note: could not install $(CHROMIUM_PKGS); the report's browser test will be skipped"; \
	else \
		echo "note: not root and no sudo; 'apt-get install $(CHROMIUM_PKGS)' to run the report's browser test"; \
	fi

test: $(STAMP) browser
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
