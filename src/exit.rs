//! Process exit codes, shared by every subcommand and documented in `--help`, the README
//! and docs/exit-codes.md. CI pipelines branch on these numbers, so they never change meaning.

/// Everything the command was asked to do succeeded (a valid scenario, a formatted file).
pub const SUCCESS: u8 = 0;
/// The scenario ran but at least one expectation failed; for `fmt --check`, a file needs formatting.
pub const FAILED: u8 = 1;
/// The input is invalid: a scenario with errors, a bad `--set`, a missing file, a usage error.
pub const INVALID_INPUT: u8 = 2;
/// A gated metric regressed against the baseline.
pub const REGRESSION: u8 = 3;
/// The run is not valid evidence: too few samples for a target, or the run was interrupted.
pub const INVALID_RUN: u8 = 4;
/// Something failed while running: a model that would not load, an I/O error writing results.
pub const RUNTIME_ERROR: u8 = 5;

/// The table printed at the end of `--help`.
pub const HELP_TABLE: &str = "\
Exit codes:
  0  success (valid scenario; all expectations met; file already formatted)
  1  expectations failed (fmt --check: a file needs formatting)
  2  invalid input: scenario errors, bad --set, unreadable file, usage error
  3  regression against the baseline
  4  invalid run: undecided target, busy host (host-quiet), not comparable, or interrupted
  5  runtime error";
