//! The end-to-end suites live in `tests/`; this library is intentionally empty.
