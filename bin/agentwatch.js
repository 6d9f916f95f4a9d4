#!/usr/bin/env node
'use strict';
// npx entry point for the compiled CLI (built by `npm install` through the `prepare` script).
const { main } = require('../dist/src/cli/main.js');
main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, cwd: process.cwd() })
  .then((code) => {
    process.exitCode = code;
  })
  .catch((error) => {
    process.stderr.write(`agentwatch: ${error && error.stack ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  });
