/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/src", "<rootDir>/dev", "<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": ["ts-jest", { isolatedModules: true, tsconfig: "tsconfig.dev.json" }] },
  testTimeout: 60000,
  // Integration and end-to-end tests start servers on fixed-free ports; two workers fit a 2-core machine.
  maxWorkers: 2,
};
