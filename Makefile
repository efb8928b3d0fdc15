# The two set-up commands (README): `make demo` runs the main job, `make test` runs the tests.
# Both create .venv on first use (scripts/setup.sh), so a fresh clone needs nothing else.
.PHONY: setup demo test
setup:
	bash scripts/setup.sh
demo: setup
	.venv/bin/gem-rag demo
test: setup
	.venv/bin/python -m pytest -q -p no:cacheprovider
