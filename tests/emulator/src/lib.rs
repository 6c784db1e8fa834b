//! Local WeCom and Douyin platform emulator for runs, tests and benchmarks.
