#!/usr/bin/env bash
# The Python environment of scripts/eval-real.py (issue #24): .venv-eval with
# pinned packages from PyPI, and the obp wheel (only for the Open Bandit
# Dataset sample it ships; it is not installed, so no torch).
# Not part of npm test: the evaluation is a benchmark that prints figures.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-eval
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  numpy==2.4.6 scikit-learn==1.9.1 vowpalwabbit==9.11.9 mabwiser==2.7.4
mkdir -p "$venv/wheels"
"$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps -d "$venv/wheels" obp==0.4.1
"$venv/bin/python" -c 'import vowpalwabbit, mabwiser, sklearn, numpy' # the imports work
echo "setup-eval: $("$venv/bin/pip" list --disable-pip-version-check 2>/dev/null | grep -iE '^(vowpalwabbit|mabwiser|scikit-learn|numpy) ' | tr -s ' ' | paste -sd ',' -); $(ls "$venv/wheels")"
