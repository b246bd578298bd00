// Runs the npm gpt-3-encoder port (the reference encoder) over a batch of inputs, for the
// tokenizer tests. One node process handles the whole batch.
//
//   node js_reference_encode.js ENCODER_JS REQUEST_JSON OUT_FILE
//
// REQUEST_JSON is {"strings": [...]} or {"files": [...]}. OUT_FILE gets one line per input:
// the ids, space-separated (an empty line for an empty input).
'use strict';
const fs = require('fs');

if (process.argv.length !== 5) {
  console.error('usage: node js_reference_encode.js ENCODER_JS REQUEST_JSON OUT_FILE');
  process.exit(2);
}
const encoder = require(process.argv[2]);
const request = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const inputs = request.strings
  ? request.strings
  : request.files.map((f) => fs.readFileSync(f, 'utf8'));
const lines = inputs.map((text) => encoder.encode(text).join(' '));
fs.writeFileSync(process.argv[4], lines.join('\n') + '\n');
