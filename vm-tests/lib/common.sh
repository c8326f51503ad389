# vm-tests/lib/common.sh: what every tier's scripts share. Sourced.
# Messages, polling, the scenario runner and its tally.

say() { echo "vm-tests: $*"; }
die() { echo "vm-tests: FAIL: $*" >&2; exit 1; }
fail() { echo "  $*" >&2; return 1; } # inside a scenario: says why, fails it

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.5 s until it
# succeeds; says what it waited for when it gives up.
wait_for() {
  local limit=$1 what=$2 end
  shift 2
  end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || { echo "  timed out after ${limit} s waiting for: $what" >&2; return 1; }
    sleep 0.5
  done
}

# json_check PYTHON-EXPRESSION: exit 0 if it holds of `d`, the JSON on stdin.
json_check() {
  python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if ('"$1"') else 1)'
}

# The scenarios of a tier, run in order; after a failure the rest are
# listed as not run (they build on the earlier ones' state), unless the
# tier set keep_going (below).
passed=0
failed=()
durations=()
# A tier replaces these: what to print when a scenario fails; what to
# learn again after each (a scenario runs in a subshell: a machine it
# rebooted has new PIDs the tier must pick up).
on_failure() { :; }
after_scenario() { :; }

# A tier whose scenarios each set up the state they need, once its set-up
# scenarios passed, sets keep_going=1: a failure then does not stop the
# scenarios after it.
keep_going=0

run_scenario() { # run_scenario NAME FUNCTION
  local name=$1 start=$SECONDS rc
  if ((${#failed[@]})) && ((!keep_going)); then
    failed+=("$name (not run: an earlier scenario failed)")
    return 0
  fi
  say "scenario $name: start"
  set +e
  ("$2")
  rc=$?
  set -e
  if ((rc == 0)); then
    passed=$((passed + 1))
    say "scenario $name: PASS in $((SECONDS - start)) s"
  else
    failed+=("$name")
    say "scenario $name: FAIL in $((SECONDS - start)) s"
    on_failure
  fi
  after_scenario
  durations+=("$name $((SECONDS - start))s")
}

# The tier's closing line, which scripts/test.sh adds up; exit status 1 if
# anything failed.
finish() { # finish TIER
  say "$1 durations: ${durations[*]}"
  if ((${#failed[@]})); then
    say "$passed passed, ${#failed[@]} failed: ${failed[*]}"
    return 1
  fi
  say "$passed passed, 0 failed"
}

# pick_scenarios ALL SETUP ARGS...: sets `wanted` to every scenario of the
# array named ALL, or, with ARGS, the set-up scenarios of the array named
# SETUP then the ones named (with dashes or underscores).
pick_scenarios() {
  local -n _all=$1 _setup=$2
  shift 2
  if (($# == 0)); then
    wanted=("${_all[@]}")
    return 0
  fi
  wanted=("${_setup[@]}")
  local s cand name
  for s in "$@"; do
    name=
    for cand in "$s" "${s//-/_}" "${s//_/-}"; do
      if [[ " ${_all[*]} " == *" $cand "* ]]; then name=$cand; break; fi
    done
    [[ -n $name ]] || die "no scenario '$s' (scenarios: ${_all[*]})"
    [[ " ${wanted[*]} " == *" $name "* ]] || wanted+=("$name")
  done
}
