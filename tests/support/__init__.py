"""What the tests share: waiting on a condition instead of a clock, reading processes from /proc,
and reading an in-process `Metrics` as a scrape would. The service launcher the load tests use too
stays in `load_tests.server`."""
