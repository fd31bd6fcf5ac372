#!/usr/bin/env bash
# Writes tests/fixtures/index/tiny-beir: a six-passage BEIR directory in two languages whose
# three judged queries each paraphrase one passage, for the end-to-end `polydense retrieve` test.
set -euo pipefail
out="$(dirname "$0")/../tests/fixtures/index/tiny-beir"
mkdir -p "$out/qrels"
cat > "$out/corpus.jsonl" <<'JSONL'
{"_id": "d1", "title": "Volcanoes", "text": "A volcano erupts when molten rock, ash and gases escape from a magma chamber below the surface.", "lang": "en"}
{"_id": "d2", "title": "Photosynthesis", "text": "Plants use sunlight, water and carbon dioxide to make glucose and release oxygen.", "lang": "en"}
{"_id": "d3", "title": "Football", "text": "The World Cup is an international football tournament held every four years.", "lang": "en"}
{"_id": "d4", "title": "Berlin", "text": "Berlin ist die Hauptstadt Deutschlands und hat etwa 3,7 Millionen Einwohner.", "lang": "de"}
{"_id": "d5", "title": "Kaffee", "text": "Kaffee wird aus den gerösteten Bohnen der Kaffeepflanze zubereitet.", "lang": "de"}
{"_id": "d6", "title": "Computers", "text": "A central processing unit executes the instructions of a computer program.", "lang": "en"}
JSONL
cat > "$out/queries.jsonl" <<'JSONL'
{"_id": "q1", "text": "why does a volcano erupt with magma and ash", "lang": "en"}
{"_id": "q2", "text": "how do plants turn sunlight into glucose and oxygen", "lang": "en"}
{"_id": "q3", "text": "Berlin Hauptstadt Deutschlands Einwohner", "lang": "de"}
{"_id": "q4", "text": "an unjudged query about computers", "lang": "en"}
JSONL
printf 'query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td4\t1\n' > "$out/qrels/test.tsv"
