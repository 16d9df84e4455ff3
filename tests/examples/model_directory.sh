#!/usr/bin/env bash
# From training to predictions with a model directory: `hyperadapt train camtl --config run.toml` trains CA-MTL
# on all-MiniLM-L6-v2 for a few steps on SST-2 and STS-B and writes --save-model DIR (with --out: metrics.jsonl
# and the curves); `hyperadapt info` describes it; `hyperadapt
# predict` on GLUE dev files (the first 300 examples of SST-2's and STS-B's) gives predictions whose metric (computed here, in Python, from the
# predictions and the files' gold labels) equals what `hyperadapt eval` reports; a second predict run gives
# the same bytes; `hyperadapt serve` answers 32 concurrent clients correctly, refuses malformed requests
# with a JSON error and stops on SIGTERM; `hyperadapt train pha` saves a PHA model and `hyperadapt transfer
# --source-model` transfers it few-shot to CB and saves the result, which eval reads; bad inputs (and config
# files) are refused with the culprit named and exit 1 (2 for a bad option), never a crash.
# Without the checkpoint or the shared data: SKIPPED, exit 0.
#   model_directory.sh <02_camtl_glue> <hyperadapt> <model dir> <shared data dir> <work dir> [with-http]
#   ($HYPERADAPT_MODEL_DIR and $HYPERADAPT_SHARED_DATA override the model and the data)
set -uo pipefail
trainer=$1 tool=$2
model=${HYPERADAPT_MODEL_DIR:-$3}
data=${HYPERADAPT_SHARED_DATA:-$4}
work=$5
http=${6:-without-http}  # with-http: the tool was built with cpp-httplib (hyperadapt serve)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ ! -f $model/model.safetensors ]]; then echo "SKIPPED: no checkpoint in $model (scripts/fetch_model.sh)"; exit 0; fi
if [[ ! -f $data/glue/SST-2/dev.tsv ]]; then echo "SKIPPED: no GLUE data under $data"; exit 0; fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=PASSIVE
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
failed=0
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }

# The run's settings in a TOML file, as a user keeps them; the command line adds --save-model and --out.
cat >run.toml <<TOML
# CA-MTL on two GLUE tasks, a few steps
checkpoint = "$model"
data = "$data"
tasks = "sst2,stsb"
train-per-task = 128
dev-per-task = 64
seq-len = 64
steps = 6
head-input = "mean"
scale-regression = true
lr = 2e-4
quiet = true
TOML
out=$("$tool" train camtl --config run.toml --save-model saved --out run 2>&1) ||
  { echo "FAIL: hyperadapt train camtl --config run.toml --save-model saved: $out"; exit 1; }
for f in hyperadapt.json config.json model.safetensors task_parameters.safetensors vocab.txt; do
  [[ -f saved/$f ]] || fail "saved/$f is missing"
done
[[ $(wc -l <run/metrics.jsonl) -ge 6 ]] || fail "train --out run: metrics.jsonl has $(wc -l <run/metrics.jsonl) lines"
[[ -s run/dev_curves.png ]] || fail "train --out run: no dev_curves.png"
python3 -c 'import json,sys; p=json.load(open("saved/hyperadapt.json"))["provenance"]; assert p["made_by"].startswith("hyperadapt train camtl") and p["steps"]==6, p' ||
  fail "saved/hyperadapt.json's provenance: $(cat saved/hyperadapt.json)"
info=$("$tool" info saved 2>&1) || fail "info: $info"
grep -q "a camtl model" <<<"$info" || fail "info does not name the kind: $info"
grep -q "stsb.*sentence pairs, regression" <<<"$info" || fail "info does not describe stsb: $info"
"$tool" info saved --json >info.json || fail "info --json"
python3 -c 'import json,sys; j=json.load(open("info.json")); assert j["kind"]=="camtl" and [t["name"] for t in j["tasks"]]==["sst2","stsb"], j' ||
  fail "info --json: $(cat info.json)"

# predict and eval agree: on the first 300 sentences of SST-2's dev file and the first 300 pairs of STS-B's
# (files of the same layout, named dev.tsv so that the task's reader takes them; the whole SST-2 file, 872
# sentences, made this the suite's longest test by 30 s of one core for no other check).
mkdir -p sst2 stsb && head -301 "$data/glue/SST-2/dev.tsv" >sst2/dev.tsv && head -301 "$data/glue/STS-B/dev.tsv" >stsb/dev.tsv
for task in sst2 stsb; do
  file=$task/dev.tsv
  "$tool" predict --model saved --task "$task" --input "$file" --output "$task.jsonl" || fail "predict $task"
  "$tool" eval --model saved --task "$task" --input "$file" --output "$task.eval.json" >/dev/null || fail "eval $task"
  python3 - "$task" "$file" "$task.jsonl" "$task.eval.json" <<'EOF' || fail "predict and eval disagree on $task"
import csv, json, math, sys
task, tsv, preds, ev = sys.argv[1:]
rows = list(csv.reader(open(tsv, encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE))
header, rows = rows[0], rows[1:]
p = [json.loads(l) for l in open(preds)]
e = json.load(open(ev))
assert len(p) == len(rows) == e["examples"], (len(p), len(rows), e["examples"])
assert [x["index"] for x in p] == list(range(len(p)))
if task == "sst2":
    gold = [int(r[header.index("label")]) for r in rows]
    acc = sum(int(x["label_name"]) == g for x, g in zip(p, gold)) / len(gold)
    assert all(abs(sum(x["probabilities"]) - 1) < 1e-9 for x in p)
    assert acc == e["metrics"]["accuracy"], (acc, e)
    print(f"sst2: accuracy {acc:.4f} from predict = eval's")
else:
    gold = [float(r[header.index("score")]) for r in rows]
    v = [x["value"] for x in p]
    mv, mg = sum(v) / len(v), sum(gold) / len(gold)
    cov = sum((a - mv) * (b - mg) for a, b in zip(v, gold))
    r = cov / math.sqrt(sum((a - mv) ** 2 for a in v) * sum((b - mg) ** 2 for b in gold))
    # The library reads the gold scores as float (3.8 -> 3.7999999523), Python as double: 1e-6 covers that.
    assert abs(r - e["metrics"]["pearson"]) < 1e-6, (r, e)
    print(f"stsb: pearson {r:.4f} from predict = eval's")
EOF
done
"$tool" predict --model saved --task stsb --input stsb/dev.tsv --output again.jsonl || fail "predict again"
cmp -s stsb.jsonl again.jsonl || fail "two predict runs differ"
printf 'a gripping, funny film\n{"text": "dull"}\n' >mixed.txt
printf '{"text": "a gripping, funny film"}\n{"text": "dull and long"}\n' >good.jsonl
"$tool" predict --model saved --task sst2 --input good.jsonl --format jsonl >good.out || fail "jsonl input"
[[ $(wc -l <good.out) -eq 2 ]] || fail "jsonl input: $(cat good.out)"
printf 'A man plays.\tA man is playing.\n' | "$tool" predict --model saved --task stsb >pair.out || fail "a pair from stdin"
grep -q '"value"' pair.out || fail "a pair from stdin: $(cat pair.out)"

# A pipe is answered as its lines arrive, not at its end.
coproc PREDICT { "$tool" predict --model saved --task sst2; }
echo "a gripping, funny film" >&"${PREDICT[1]}"
if read -t 60 -r answer <&"${PREDICT[0]}"; then
  grep -q '"index":0' <<<"$answer" || fail "streaming: unexpected answer $answer"
else
  fail "streaming: no answer to the first line while the pipe stays open"
fi
eval "exec ${PREDICT[1]}>&-"
wait "$PREDICT_PID" || fail "streaming: predict exited non-zero"

# expect NAME RC PATTERN CMD...
expect() {
  local name=$1 want=$2 pattern=$3 got rc
  shift 3
  got=$(timeout 120 "$@" 2>&1 </dev/null)
  rc=$?
  [[ $rc -eq $want ]] || fail "$name: exit $rc, wanted $want: $got"
  grep -qiF -- "$pattern" <<<"$got" || fail "$name: output does not name '$pattern': $got"
}
expect "unknown task" 1 "unknown task 'cola': this model has sst2, stsb" "$tool" predict --model saved --task cola --input good.jsonl
expect "another task's file" 1 "RTE/dev.tsv" "$tool" eval --model saved --task sst2 --input "$data/glue/RTE/dev.tsv"
expect "a pair for a single-sentence task" 1 "bad.txt:1" bash -c "printf 'one\ttwo\n' >bad.txt; '$tool' predict --model saved --task sst2 --input bad.txt"
expect "a JSONL line that is not JSON" 1 "mixed.txt:1: not JSON" "$tool" predict --model saved --task sst2 --input mixed.txt --format jsonl
expect "no such model directory" 2 "--model" "$tool" predict --model nowhere --task sst2
expect "unknown subcommand option" 2 "--colour" "$tool" predict --model saved --task sst2 --colour
expect "output into a missing folder" 1 "missing/out.jsonl" "$tool" predict --model saved --task sst2 --input good.jsonl --output missing/out.jsonl
cp -r saved broken
printf 'garbage' | dd of=broken/task_parameters.safetensors bs=1 seek=200000 conv=notrunc 2>/dev/null
expect "a corrupted weight file" 1 "task_parameters.safetensors" "$tool" predict --model broken --task sst2 --input good.jsonl
rm broken/vocab.txt
expect "a missing vocabulary" 1 "vocab.txt" "$tool" info broken
mkdir set && cp saved/hyperadapt.json saved/task_parameters.safetensors set/
expect "an adapter set without its backbone" 1 "--backbone" "$tool" info set
expect "an adapter set of a model that trained its backbone" 1 "trained part of its backbone" "$tool" info set --backbone "$model"
mkdir notes && echo keep >notes/todo.txt
expect "--save-model over a folder that is not a model directory" 2 "not a model directory" \
  "$trainer" --checkpoint "$model" --data "$data" --tasks sst2 --steps 1 --save-model notes
[[ $(cat notes/todo.txt) == keep ]] || fail "notes/todo.txt was changed"
expect "--save-model without a checkpoint" 2 "--save-model" "$trainer" --steps 1 --save-model elsewhere
printf 'tasks = "sst2"\nbogus-option = 3\n' >bogus.toml
expect "a config file with an unknown option" 2 "bogus.toml" "$tool" train camtl --config bogus.toml
printf 'epochs = "many"\n' >badvalue.toml
expect "a config file with a bad value" 2 "--epochs" "$tool" train camtl --config badvalue.toml
expect "train without a recipe" 2 "camtl|pha" "$tool" train
expect "transfer from a CA-MTL model" 2 "holds a camtl model" "$tool" transfer --source-model saved --data "$data" --target cb --k 16

# PHA: a few steps of low-data multi-task training on SST-2 and STS-B, saved; then few-shot transfer to CB
# (a task the source never saw) from that directory alone: it retrieves a source prototype, trains, saves the
# one-task model, and eval reads that on CB's validation file.
out=$("$tool" train pha --checkpoint "$model" --data "$data" --tasks sst2,stsb --train-per-task 128 --dev-per-task 64 \
      --seq-len 64 --steps 6 --quiet --save-model pha 2>&1) ||
  fail "hyperadapt train pha: $out"
out=$("$tool" transfer --source-model pha --data "$data" --target cb --k 16 --steps 3 --dev-per-task 32 --quiet \
      --save-model cb 2>&1) || fail "hyperadapt transfer: $out"
grep -q "<- retrieved" <<<"$out" || fail "transfer did not report the retrieved prototype: $out"
"$tool" info cb --json >cb.json || fail "info cb"
python3 -c 'import json; j=json.load(open("cb.json")); assert j["kind"]=="pha" and [t["name"] for t in j["tasks"]]==["cb"], j' ||
  fail "info cb: $(cat cb.json)"
"$tool" eval --model cb --task cb --input "$data/superglue/CB/val.jsonl" --output cb.eval.json >/dev/null || fail "eval cb"
python3 -c 'import json; e=json.load(open("cb.eval.json")); assert e["examples"]==56 and 0<=e["metrics"]["accuracy"]<=1, e' ||
  fail "eval cb: $(cat cb.eval.json)"

# The HTTP server: 32 concurrent clients x 12 requests against predict's answers, a malformed request in
# each client's stream, then SIGTERM: it finishes, exits 0 and counts every answered request. (32 clients keep
# the batcher's rounds full and mixed; more requests each add minutes of CI time and no new case:
# benchmarks/compare_predict.sh is the load test.)
if [[ $http == with-http ]]; then
  head -300 "$data/glue/SST-2/dev.tsv" | tail -n +2 | cut -f1 >sentences.txt
  "$tool" predict --model saved --task sst2 --input sentences.txt --format text --output expected.jsonl || fail "predict sentences.txt"
  "$tool" serve --model saved --port 0 >serve.log 2>&1 &
  server=$!
  for _ in $(seq 100); do grep -q "http://" serve.log 2>/dev/null && break; sleep 0.1; done
  port=$(grep -o 'http://127.0.0.1:[0-9]*' serve.log | grep -o '[0-9]*$')
  if [[ -z $port ]]; then
    fail "the server did not start: $(cat serve.log)"
  else
    clients=$(python3 "$here/server_clients.py" "$port" expected.jsonl sentences.txt --clients 32 --requests 12) ||
      fail "server clients: $clients"
    echo "$clients"
    answered=$(grep -o '[0-9]* answered correctly' <<<"$clients" | grep -o '^[0-9]*')
    kill -TERM "$server"
    rc=0
    timeout 20 tail --pid="$server" -f /dev/null || fail "the server did not stop within 20 s of SIGTERM"
    wait "$server" || rc=$?
    [[ $rc -eq 0 ]] || fail "the server exited $rc after SIGTERM: $(cat serve.log)"
    grep -q "stopped; ${answered:-?} requests" serve.log ||
      fail "the shutdown summary does not count the ${answered:-?} answered requests: $(cat serve.log)"
    cat serve.log
  fi
else
  echo "serve: not built with cpp-httplib, its checks skipped"
fi

if [[ $failed -ne 0 ]]; then echo "$failed failures"; exit 1; fi
echo "PASS"
rm -rf "$work"
