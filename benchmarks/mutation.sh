#!/usr/bin/env bash
# Mutation testing of the modules that compute user-visible figures (on demand, not in CI).
#
#   bash benchmarks/mutation.sh                           # every module listed in [tool.mutmut]
#   bash benchmarks/mutation.sh 'firegrid.risk.index.*'   # only the mutants of one module
#
# Copies the working tree (tracked files, uncommitted edits included) to a scratch folder so
# mutmut's `mutants/` never lands in the checkout, runs mutmut 3 there with one worker at low
# priority, and prints the score per module. Settings: [tool.mutmut] in pyproject.toml.
# The copy is laid out as the package installs (spatial/ -> firegrid/spatial/, ...; from
# [tool.setuptools] package-dir, by benchmarks/mutation_layout.py): mutmut names a mutant after
# its file's path and only activates it in the module of that name, and the tests must import
# the mutated files in mutants/, not the checkout through the editable install.
# Needs mutmut >= 3.2 (`pip install -e ".[mutation]"`). MUTATION_DIR keeps the scratch copy
# between runs (mutmut then re-tests only what changed); MUTATION_JOBS sets the workers.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${MUTATION_DIR:-$(mktemp -d)/firegrid}"
mkdir -p "$work"
mapfile -t layout < <(python3 "$repo/benchmarks/mutation_layout.py" transforms "$repo/pyproject.toml")
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) \
  | tar -xf - -C "$work" "${layout[@]}"
cd "$work"
echo "mutation: working in $work" >&2
# Refuse to run when a module to mutate would be imported under another name or from elsewhere
# (the checkout): every mutant of it would survive.
python3 benchmarks/mutation_layout.py check
status=0
nice -n 10 mutmut run --max-children "${MUTATION_JOBS:-1}" "$@" || status=$?
mutmut results --all true > mutation-results.txt
python3 - mutation-results.txt <<'PY'
import collections
import sys

per = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1], encoding="utf-8"):
    name, _, state = line.strip().rpartition(": ")
    if name:
        per[name.split(".x")[0]][state] += 1
print(f"{'module':38} {'killed':>7} {'survived':>9} {'other':>6} {'score':>6}")
for mod, c in sorted(per.items()):
    tested = c["killed"] + c["survived"] + c["timeout"]
    if not tested:
        continue  # not run this time
    killed = c["killed"] + c["timeout"]
    other = sum(c.values()) - tested
    print(f"{mod:38} {killed:7d} {c['survived']:9d} {other:6d} {killed / tested:6.0%}")
PY
echo "survivors: cd $work && mutmut results; mutmut show <name>" >&2
exit "$status"
