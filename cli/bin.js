#!/usr/bin/env node
// `creatio-o365` (package.json "bin"): runs the TypeScript command line in cli/ through tsx (a
// dependency of this repository), so `npx creatio-o365` works from the repository without a build
// step. The command line is a tool of the repository, not part of the Functions package
// (README, "Command line"; scripts/package.ts bundles only dist/src).
"use strict";
require("tsx/cjs/api").register();
require("./main.ts")
  .main(process.argv)
  .then((code) => {
    process.exitCode = code;
  });
