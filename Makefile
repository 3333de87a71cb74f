# The two commands of the README: `make run` (install, then the main job on the stand-in data)
# and `make test` (install, then unit tests and every notebook in smoke mode).
PYTHON ?= python
SHARED ?= $(abspath ../shared)
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
export NSFW_MOBILENET_WEIGHTS_DIR ?= $(if $(wildcard $(SHARED)/weights),$(SHARED)/weights,)

.PHONY: install run figures test

install:
	$(PYTHON) -m pip install -q -r requirements.txt
	$(PYTHON) -m pip install -q --no-deps -e .

# The main job: generate the stand-in data, run every row of table 4.1, print thesis vs. this run.
run: install
	nsfw-mobilenet make-standin data/standin
	nsfw-mobilenet train --table 4.1 --data data/standin/binary --out runs/table_4.1_standin

# Execute every notebook at full scale (real-photo proxies from ../shared where present); they rewrite figures/.
# notebooks/full_run/NN_name.yaml holds a notebook's parameters for that run (reuse of committed results).
figures:
	mkdir -p runs/notebooks
	for nb in $(NOTEBOOKS); do \
	  params=notebooks/full_run/$$(basename $$nb .ipynb).yaml; \
	  NSFW_MOBILENET_SMOKE=0 IPYTHONDIR=$(abspath notebooks/full_run/ipython) $(PYTHON) -m papermill --cwd notebooks \
	    $$( [ -f $$params ] && echo -f $$params ) $$nb runs/notebooks/$$(basename $$nb) || exit 1; \
	done

test: install
	NSFW_MOBILENET_SMOKE=1 $(PYTHON) -m pytest --nbval-lax -q -p no:cacheprovider tests notebooks
