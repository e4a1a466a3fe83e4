#!/usr/bin/env node
// `creatio-o365` (package.json "bin"): runs the TypeScript command line in cli/ through tsx (a
// dependency of this repository), so `npx creatio-o365` works from the repository without a build
// step. The command line is a tool of the repository, not part of the Functions package
// (README, "Command line"; scripts/package.ts bundles only dist/src).
"use strict";
// Output piped into a command that stops reading (`creatio-o365 sites | head -3`) is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error) => {
    if (error && error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
}
require("tsx/cjs/api").register();
require("./main.ts")
  .main(process.argv)
  .then((code) => {
    process.exitCode = code;
  });
