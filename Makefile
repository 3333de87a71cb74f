# The two commands of the README: `make run` (install, then the main job on the stand-in data)
# and `make test` (install, then unit tests and every notebook in smoke mode).
#
# Everything runs with $(PYTHON): the active virtual environment's python when one is active
# (VIRTUAL_ENV), else the project's own .venv, made from python3 on first use. Stock Debian/Ubuntu
# have no `python` and refuse system-wide pip installs (PEP 668). The .venv sees python3's own
# packages (--system-site-packages), so a Python that already has the requirements installs nothing.
VENV := .venv
PYTHON := $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV)/bin/python,$(VENV)/bin/python)
SHARED ?= $(abspath ../shared)
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
export NSFW_MOBILENET_WEIGHTS_DIR ?= $(if $(wildcard $(SHARED)/weights),$(SHARED)/weights,)

.PHONY: install run figures test

$(VENV)/bin/python:
	python3 -m venv --system-site-packages $(VENV)

# The .venv is made only when it is the interpreter in use. pip runs again only when requirements.txt or
# pyproject.toml changed since the last install (the stamp file beside the interpreter's environment).
INSTALLED := $(dir $(PYTHON))../.nsfw-mobilenet-installed
install: $(INSTALLED)

$(INSTALLED): requirements.txt pyproject.toml | $(filter $(VENV)/bin/python,$(PYTHON))
	$(PYTHON) -m pip install -q -r requirements.txt
	$(PYTHON) -m pip install -q --no-deps -e .
	touch $@

# The main job: generate the stand-in data, run every row of table 4.1, print thesis vs. this run.
run: install
	$(PYTHON) -m nsfw_mobilenet make-standin data/standin
	$(PYTHON) -m nsfw_mobilenet train --table 4.1 --data data/standin/binary --out runs/table_4.1_standin

# Execute every notebook at full scale (real-photo proxies from ../shared where present); they rewrite figures/.
# notebooks/full_run/NN_name.yaml holds a notebook's parameters for that run (reuse of committed results).
figures: install
	mkdir -p runs/notebooks
	for nb in $(NOTEBOOKS); do \
	  params=notebooks/full_run/$$(basename $$nb .ipynb).yaml; \
	  NSFW_MOBILENET_SMOKE=0 IPYTHONDIR=$(abspath notebooks/full_run/ipython) $(PYTHON) -m papermill --cwd notebooks \
	    $$( [ -f $$params ] && echo -f $$params ) $$nb runs/notebooks/$$(basename $$nb) || exit 1; \
	done

test: install
	NSFW_MOBILENET_SMOKE=1 $(PYTHON) -m pytest -n 2 --dist loadgroup --nbval-lax -q -p no:cacheprovider tests notebooks
